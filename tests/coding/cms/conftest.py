from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write a small test file; `lines` are joined with newlines exactly as given."""

    def _write(name: str, *lines: str, encoding: str = "utf-8") -> Path:
        p = tmp_path / name
        p.write_bytes(("\n".join(lines) + "\n").encode(encoding))
        return p

    return _write
