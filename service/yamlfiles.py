"""YAML read the safe way, with libyaml's C parser when PyYAML has it.

Rules, codes, vocabulary, payers and ~30 card template files are read at every start (and every
app a test builds): the pure-Python parser spent ~120 ms of a ~320 ms start on them. The C
parser reads the same safe subset into the same values (errors are the same yaml.YAMLError).
"""
from __future__ import annotations

from typing import IO, Any

import yaml

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(stream: str | bytes | IO[str] | IO[bytes]) -> Any:
    return yaml.load(stream, Loader=_Loader)
