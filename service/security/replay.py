"""`jti` replay protection: a token is accepted once; its `jti` is remembered until it expires.

One process: an in-memory TTL set. Several workers or replicas: a store they share, so a token
replayed to another worker is still refused — the service's database (table `jwt_replay`) or
Redis (`SET NX EX`). Keys are SHA-256 of issuer + jti, so nothing of the token is stored.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Column, Float, Index, String, Table, delete, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from ..config import ConfigError, Settings
from ..store.engine import DbTimeouts, bounded, make_engine
from ..store.schema import metadata

log = logging.getLogger("pumpcds.security")

jwt_replay = Table(
    "jwt_replay",
    metadata,
    Column("jti_hash", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False),
    Index("ix_jwt_replay_expires_at", "expires_at"),
)

REPLAY_STORES = ("auto", "memory", "database", "redis")


# After a failed call the shared store is not asked again for this long: calls in the meantime
# are refused at once (503 + Retry-After) instead of each waiting out a timeout.
RETRY_AFTER_S = 2


class ReplayStoreUnavailable(Exception):
    """The shared replay store did not answer; the call cannot be authenticated safely."""


class _Breaker:
    """Fail fast while a store is known to be down: one probe per `RETRY_AFTER_S`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._open_until = float("-inf")
        self._reason = ""

    def check(self) -> None:
        if self._clock() < self._open_until:
            raise ReplayStoreUnavailable(f"{self._reason}; not retried for {RETRY_AFTER_S} s")

    def failed(self, reason: str) -> ReplayStoreUnavailable:
        self._open_until = self._clock() + RETRY_AFTER_S
        self._reason = reason
        return ReplayStoreUnavailable(reason)


class ReplayCache(Protocol):
    def first_use(self, iss: str, jti: str, ttl_s: float) -> bool:
        """Record the jti; True if it was not seen before (within its lifetime)."""


def replay_key(iss: str, jti: str) -> str:
    return hashlib.sha256(f"{iss}\0{jti}".encode()).hexdigest()


class MemoryReplayCache:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def first_use(self, iss: str, jti: str, ttl_s: float) -> bool:
        key, now = replay_key(iss, jti), self._clock()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            expires = self._seen.get(key)
            if expires is not None and expires > now:
                return False
            self._seen[key] = now + max(ttl_s, 1.0)
            return True


class DatabaseReplayCache:
    """jtis in the service's database, shared by every worker that uses it."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._clock = clock
        self._breaker = _Breaker()
        self._inserts = 0
        self._table_ready = False
        self._ensure_table()
        # built at start (in gunicorn's master): keep no connection, each worker opens its own
        self.engine.dispose()

    def _ensure_table(self) -> None:
        """Create `jwt_replay` if missing (also when the store module's own migration has not run)."""
        if self._table_ready:
            return
        for attempt in range(2):  # a second worker may be creating it at the same moment
            try:
                with bounded(self.engine, begin=True) as conn:
                    metadata.create_all(conn, tables=[jwt_replay])
                self._table_ready = True
                return
            except OperationalError as exc:
                if attempt:
                    log.error("jwt_replay table not available yet (%s); calls are refused until it is", type(exc).__name__)

    @classmethod
    def from_url(cls, url: str, timeouts: DbTimeouts | None = None) -> DatabaseReplayCache:
        return cls(make_engine(url, timeouts, pool_size=2))

    def first_use(self, iss: str, jti: str, ttl_s: float) -> bool:
        key, now = replay_key(iss, jti), self._clock()
        self._breaker.check()
        self._ensure_table()
        try:
            with bounded(self.engine, begin=True) as conn:
                conn.execute(delete(jwt_replay).where(jwt_replay.c.jti_hash == key, jwt_replay.c.expires_at <= now))
                conn.execute(insert(jwt_replay).values(jti_hash=key, expires_at=now + max(ttl_s, 1.0)))
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise self._breaker.failed(f"database replay store failed ({type(exc).__name__})") from None
        self._inserts += 1
        if self._inserts % 500 == 0:
            self._purge(now)
        return True

    def _purge(self, now: float) -> None:
        try:
            with bounded(self.engine, begin=True) as conn:
                conn.execute(delete(jwt_replay).where(jwt_replay.c.expires_at <= now))
        except SQLAlchemyError:
            log.warning("purging expired jtis failed; will retry later")


class RedisReplayCache:
    def __init__(self, url: str, prefix: str = "pumpcds:jti:", timeout_s: float = 0.5) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigError("REDIS_URL is set but the Redis client is not installed; "
                              "install the extra: pip install 'pumpcds[redis]'") from None

        # no retries: a hung Redis costs one timeout, then the breaker answers at once
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                           retry_on_timeout=False, retry=None)
        self._prefix = prefix
        self._breaker = _Breaker()

    def first_use(self, iss: str, jti: str, ttl_s: float) -> bool:
        import redis

        self._breaker.check()
        try:
            stored = self._redis.set(self._prefix + replay_key(iss, jti), b"1", nx=True, ex=max(int(ttl_s) + 1, 1))
        except redis.RedisError as exc:
            raise self._breaker.failed(f"redis replay store failed ({type(exc).__name__})") from None
        return bool(stored)


def replay_cache_for(settings: Settings) -> ReplayCache:
    """`auto`: Redis when REDIS_URL is set, else the database outside development mode, else memory."""
    choice = getattr(settings, "jwt_replay_store", "auto") or "auto"
    if choice not in REPLAY_STORES:
        raise ConfigError(f"jwt_replay_store must be one of {', '.join(REPLAY_STORES)}, got {choice!r}")
    if choice == "auto":
        choice = "redis" if settings.redis_url else ("memory" if settings.development_mode else "database")
    if choice == "redis":
        if not settings.redis_url:
            raise ConfigError("jwt_replay_store is 'redis' but REDIS_URL is not set")
        return RedisReplayCache(settings.redis_url, timeout_s=settings.redis_timeout_ms / 1000)
    if choice == "database":
        return DatabaseReplayCache.from_url(settings.database_url, DbTimeouts.from_settings(settings))
    return MemoryReplayCache()
