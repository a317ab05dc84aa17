"""Audit fixtures: settings independent of the environment, and audits run in-process."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from service.audit.run import AuditOptions, AuditResult, audit
from service.config import load_settings


@pytest.fixture
def audit_settings(tmp_path: Path):
    return load_settings(environ={}, database_url=f"sqlite:///{tmp_path / 'unused.db'}")


@pytest.fixture
def run_audit(audit_settings, tmp_path: Path) -> Callable[..., AuditResult]:
    def run(inputs: list[Path], out: Path | None = None, **options: Any) -> AuditResult:
        options.setdefault("workers", 1)
        return audit(AuditOptions([str(p) for p in inputs], out or tmp_path / "out", **options), audit_settings)

    return run


def rows(path: Path) -> list[dict[str, Any]]:
    return pq.read_table(path).to_pylist()
