"""One SQLAlchemy engine per database URL, with settings that keep a dead database from stalling calls."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL (None for in-memory or non-SQLite)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def make_engine(url: str) -> Engine:
    """SQLite: create the file's directory, wait up to 15 s for a lock, and use WAL so readers never
    block the audit writes of other workers and a write costs no full fsync (synchronous=NORMAL).

    PostgreSQL: give up connecting after 3 s and check pooled connections before use, so a
    database restart costs one failed write, not a hung request.
    """
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        path = sqlite_path(url)
        engine = create_engine(url, connect_args={"timeout": 15})
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

            @event.listens_for(engine, "connect")
            def _wal(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

        return engine
    connect_args = {"connect_timeout": 3} if parsed.drivername.startswith("postgresql") else {}
    return create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=8, pool_timeout=5,
                         connect_args=connect_args)


def ping(engine: Engine) -> None:
    """Raise unless the database answers a trivial query."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
