"""The `any_store` fixture: the audit store on a SQLite file and on the real PostgreSQL (skipped
with a message when PostgreSQL is down)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.store.db import Store

from .helpers import postgres_schema, reachable


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
        s = Store(url)
        s.ensure_schema(force=True)
        yield s
        s.dispose()
        return
    if not reachable(5432):
        pytest.skip("PostgreSQL on 127.0.0.1:5432 not reachable: the PostgreSQL store tests are skipped")
    with postgres_schema("pumpcds_batch") as url:
        s = Store(url)
        s.ensure_schema(force=True)
        yield s
        s.dispose()
