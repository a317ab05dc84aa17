"""SQLAlchemy engines that can neither stall a call nor be shared across forked workers.

- Every engine made here is registered; a forked child (gunicorn worker) drops the inherited pool
  without closing it (`dispose(close=False)`), so each worker opens its own connections and never
  talks on a socket the master or a sibling also uses.
- PostgreSQL: connect timeout, a server-side statement timeout, and `bounded()`, a client-side
  deadline that cuts the socket of a connection that stops answering (a hung network or proxy,
  which no server-side timeout can catch).
- SQLite: a busy timeout, WAL so readers never block the audit writer of another worker.
"""
from __future__ import annotations

import importlib.util
import os
import socket
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import StaticPool

from ..config import ConfigError

_TIMEOUTS: weakref.WeakKeyDictionary[Engine, DbTimeouts] = weakref.WeakKeyDictionary()

SUPPORTED = ("sqlite", "postgresql")


class DatabaseUrlError(ConfigError):
    """A database URL the service cannot use; the message is one line for the operator."""


@dataclass(frozen=True)
class DbTimeouts:
    """How long any database step may take before the caller is told it failed."""

    connect_s: int = 2  # PostgreSQL: whole connection set-up (libpq connect_timeout: whole seconds, at least 2)
    statement_ms: int = 1000  # PostgreSQL: server-side statement_timeout and client-side deadline
    sqlite_busy_ms: int = 5000  # SQLite: wait this long for another writer's lock

    @classmethod
    def from_settings(cls, settings: object) -> DbTimeouts:
        return cls(
            connect_s=max(2, int(getattr(settings, "database_connect_timeout_s", cls.connect_s))),
            statement_ms=max(1, int(getattr(settings, "database_statement_timeout_ms", cls.statement_ms))),
            sqlite_busy_ms=max(0, int(getattr(settings, "sqlite_busy_timeout_ms", cls.sqlite_busy_ms))),
        )

    @property
    def deadline_s(self) -> float:
        """Client-side bound of one guarded operation: its statements plus a round trip of slack."""
        return self.statement_ms / 1000 + 0.5


def parse_database_url(url: str) -> URL:
    """The URL, checked: parses, names a supported database, and its driver is installed.

    `postgresql://` and `postgres://` mean psycopg 3 (the `[postgres]` extra), not SQLAlchemy's
    default psycopg2, which pumpcds does not ship.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise DatabaseUrlError(
            "DATABASE_URL is not a database URL; expected sqlite:///path/to/file.db or "
            "postgresql+psycopg://user@host:5432/dbname") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if backend not in SUPPORTED:
        raise DatabaseUrlError(
            f"DATABASE_URL uses the unsupported database {backend!r}; pumpcds runs on sqlite or postgresql")
    if backend == "postgresql":
        if driver not in ("", "psycopg"):
            raise DatabaseUrlError(
                f"DATABASE_URL names the driver {driver!r}; pumpcds uses psycopg 3: postgresql+psycopg://…")
        if importlib.util.find_spec("psycopg") is None:
            raise DatabaseUrlError(
                "DATABASE_URL is a PostgreSQL URL but the driver is not installed; "
                "install the extra: pip install 'pumpcds[postgres]'")
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def describe(url: str | URL) -> str:
    """Where a database is, for logs and start-up errors: host:port/db, never the password."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):
        return "an unparsable URL"
    if parsed.drivername.startswith("sqlite"):
        return f"sqlite file {parsed.database or ':memory:'}"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL (None for in-memory or non-SQLite)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _json_text(value: Any) -> str:
    """JSON columns written by orjson: the audit writer's JSON encoding was a fifth of its work."""
    return orjson.dumps(value).decode()


def make_engine(url: str, timeouts: DbTimeouts | None = None, *, pool_size: int = 4) -> Engine:
    """An engine for `url` with `timeouts` applied, registered for fork safety."""
    timeouts = timeouts or DbTimeouts()
    parsed = parse_database_url(url)
    if parsed.drivername.startswith("sqlite"):
        path = sqlite_path(url)
        if path is None:
            # in memory: each connection would be a database of its own, so the audit writer's
            # thread would find no tables; every thread shares the one connection instead
            engine = create_engine(
                parsed, poolclass=StaticPool, json_serializer=_json_text,
                connect_args={"timeout": timeouts.sqlite_busy_ms / 1000, "check_same_thread": False},
            )
        else:
            engine = create_engine(parsed, json_serializer=_json_text,
                                   connect_args={"timeout": timeouts.sqlite_busy_ms / 1000})
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

            @event.listens_for(engine, "connect")
            def _wal(dbapi_conn: Any, _record: Any) -> None:
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()
    else:
        # keep any options the URL already carries (e.g. a search_path), add the statement timeout
        options = " ".join(filter(None, (
            str(parsed.query.get("options") or ""),
            f"-c statement_timeout={timeouts.statement_ms}",
            f"-c lock_timeout={timeouts.statement_ms}",
            f"-c idle_in_transaction_session_timeout={max(10_000, timeouts.statement_ms * 10)}",
        )))
        # no pool_pre_ping: `bounded()` pings under its own deadline (SQLAlchemy's ping has none)
        engine = create_engine(
            parsed, pool_size=pool_size, max_overflow=pool_size * 2, pool_timeout=timeouts.deadline_s,
            json_serializer=_json_text,
            pool_recycle=1800, connect_args={"connect_timeout": timeouts.connect_s, "options": options},
        )
    _TIMEOUTS[engine] = timeouts
    return engine


def _after_fork_in_child() -> None:
    """Forget the parent's pooled connections without closing them (closing would end the parent's
    sessions); the child's first use opens its own."""
    for engine in list(_TIMEOUTS.keys()):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def timeouts_of(engine: Engine) -> DbTimeouts:
    return _TIMEOUTS.get(engine) or DbTimeouts()


class DeadlineExceeded(OperationalError):
    """A guarded database operation did not finish in time; its connection was cut."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:.1f} s", None, TimeoutError(f"{seconds:.1f} s"))


def _socket_of(conn: Connection) -> int | None:
    dbapi = conn.connection.dbapi_connection
    pgconn = getattr(dbapi, "pgconn", None)
    fd = getattr(pgconn, "socket", None) if pgconn is not None else None
    return fd if isinstance(fd, int) and fd >= 0 else None


class _Cutter:
    """Shuts a connection's socket down when its deadline passes; the blocked driver call then fails."""

    def __init__(self, fd: int, seconds: float) -> None:
        self.fired = False
        self._fd = fd
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            try:
                dup = socket.socket(fileno=os.dup(self._fd))
                try:
                    dup.shutdown(socket.SHUT_RDWR)
                finally:
                    dup.close()
            except OSError:
                pass

    def stop(self) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


@contextmanager
def bounded(engine: Engine, *, begin: bool = False, seconds: float | None = None) -> Iterator[Connection]:
    """A connection whose whole use (ping, statements, commit) must end within `seconds` (default:
    the engine's statement timeout plus slack), else the socket is cut and DeadlineExceeded raised.
    Connecting is bounded by the connect timeout; SQLite relies on its busy timeout."""
    seconds = timeouts_of(engine).deadline_s if seconds is None else seconds
    with engine.connect() as conn:
        if engine.dialect.name != "postgresql":
            if begin:
                with conn.begin():
                    yield conn
            else:
                yield conn
            return
        cutters: list[_Cutter] = []
        try:
            _ping_or_reconnect(conn, cutters, seconds)
            if begin:
                with conn.begin():
                    yield conn
            else:
                yield conn
        except Exception as exc:
            if any(c.fired for c in cutters):
                conn.invalidate()
                raise DeadlineExceeded(seconds) from exc
            raise
        finally:
            for cutter in cutters:
                cutter.stop()


def _arm(conn: Connection, seconds: float, cutters: list[_Cutter]) -> None:
    fd = _socket_of(conn)
    if fd is not None:
        cutters.append(_Cutter(fd, seconds))


def _ping_or_reconnect(conn: Connection, cutters: list[_Cutter], seconds: float) -> None:
    """A pooled connection may have died (database restart): ping it, and on a disconnect
    reconnect once. The ping runs under the caller's deadline, unlike SQLAlchemy's pre-ping."""
    _arm(conn, seconds, cutters)
    try:
        conn.exec_driver_sql("SELECT 1")
        conn.rollback()
        return
    except OperationalError:
        if not cutters or any(c.fired for c in cutters):
            raise
    for cutter in cutters:
        cutter.stop()
    conn.invalidate()
    conn.rollback()
    _ = conn.connection  # a fresh connection: bounded by the connect timeout
    _arm(conn, seconds, cutters)
    conn.exec_driver_sql("SELECT 1")
    conn.rollback()


def ping(engine: Engine) -> None:
    """Raise unless the database answers a trivial query in time."""
    with bounded(engine) as conn:
        conn.execute(text("SELECT 1"))
