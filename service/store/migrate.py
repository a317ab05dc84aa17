"""A small versioned migration runner: an ordered list of steps, each recorded in a version table.

Why not Alembic: the schema is three tables plus the replay table, the steps are few, and this
runner needs no extra dependency or migration directory shipped beside the package.

Two workers starting at once is safe: the whole run holds one database-wide lock (PostgreSQL
`pg_advisory_xact_lock`, SQLite `BEGIN IMMEDIATE`), so the second worker waits, then sees every step
already recorded and does nothing. SQLite can also refuse a lock at once, without waiting out its
busy timeout (a connection switching the file to WAL while another takes the write lock: SQLite
breaks the would-be deadlock by failing one side), so a "database is locked" there is retried for
a while: a worker that dies at start-up over a lock is worse than one that starts a second later. DDL is transactional on both databases, so a failed step leaves
no half-built schema behind.
"""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, insert, select, text
from sqlalchemy.exc import OperationalError

from . import tables
from .schema import metadata

log = logging.getLogger("pumpcds.store")

# Any fixed 64-bit number shared by every pumpcds process on the same PostgreSQL database.
_PG_LOCK_KEY = 0x70756D70636473  # "pumpcds"

SQLITE_LOCK_PATIENCE_S = 30.0


@dataclass(frozen=True)
class Step:
    version: int
    name: str
    apply: Callable[[Connection], None]


def _initial(conn: Connection) -> None:
    """Audit, feedback and the JWT replay table (which also creates itself when it runs first)."""
    from ..security.replay import jwt_replay  # late import: security.replay imports store.schema

    metadata.create_all(
        conn,
        tables=[tables.audit_record, tables.audit_card, tables.feedback_item, jwt_replay],
        checkfirst=True,
    )


STEPS: tuple[Step, ...] = (
    Step(1, "audit records, audit cards, feedback items, jwt_replay", _initial),
)


def utcnow() -> datetime:
    """Naive UTC, the form every timestamp column holds."""
    return datetime.now(UTC).replace(tzinfo=None)


def _apply_pending(conn: Connection, steps: tuple[Step, ...]) -> list[int]:
    metadata.create_all(conn, tables=[tables.schema_version], checkfirst=True)
    done = set(conn.execute(select(tables.schema_version.c.version)).scalars())
    newest_known = max((s.version for s in steps), default=0)
    if done and max(done) > newest_known:
        log.warning("database schema version %s is newer than this code knows (%s)", max(done), newest_known)
    applied = []
    for step in sorted(steps, key=lambda s: s.version):
        if step.version in done:
            continue
        step.apply(conn)
        conn.execute(insert(tables.schema_version).values(version=step.version, name=step.name, applied_at=utcnow()))
        applied.append(step.version)
    return applied


def migrate(engine: Engine, steps: tuple[Step, ...] = STEPS, *, patience_s: float = SQLITE_LOCK_PATIENCE_S) -> list[int]:
    """Apply every step not yet recorded; return the versions applied by this call."""
    if engine.dialect.name == "sqlite":
        applied = _migrate_sqlite_patiently(engine, steps, patience_s)
    else:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            applied = _apply_pending(conn, steps)
    if applied:
        log.info("database schema migrated to version %s", applied[-1])
    return applied


def _is_lock_refusal(exc: OperationalError) -> bool:
    message = str(exc.orig if exc.orig is not None else exc).lower()
    return "database is locked" in message or "database is busy" in message


def _migrate_sqlite_patiently(engine: Engine, steps: tuple[Step, ...], patience_s: float) -> list[int]:
    deadline = time.monotonic() + patience_s
    pause = 0.02
    while True:
        try:
            return _migrate_sqlite(engine, steps)
        except OperationalError as exc:
            if not _is_lock_refusal(exc) or time.monotonic() + pause > deadline:
                raise
            log.info("database file locked by another starting process; migration retried")
        time.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 0.5)


def _migrate_sqlite(engine: Engine, steps: tuple[Step, ...]) -> list[int]:
    with engine.connect() as raw:
        conn = raw.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the database-wide write lock, held to COMMIT
        try:
            applied = _apply_pending(conn, steps)
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")
    return applied


def current_version(engine: Engine) -> int:
    with engine.connect() as conn:
        versions = list(conn.execute(select(tables.schema_version.c.version)).scalars())
    return max(versions, default=0)
