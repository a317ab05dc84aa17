"""The service's database: audit records of hook calls and clinicians' feedback on cards.

Every public method either does its work or raises `StoreUnavailable`; callers decide what a
failure costs (the hook answer: nothing; feedback: a 503 the client retries).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from . import tables
from .engine import DbTimeouts, bounded, describe, make_engine, ping
from .migrate import migrate, utcnow

log = logging.getLogger("pumpcds.store")

# Longest strings kept per column: clients control these values, the table must not grow without bound.
_ID_MAX = 100
_CARD_MAX = 200  # the feedback schema's limit on `card`
_VERSION_MAX = 50
_CODE_MAX = 200
_SYSTEM_MAX = 500
_DISPLAY_MAX = 500
_COMMENT_MAX = 4000


class StoreUnavailable(RuntimeError):
    """The database could not be reached or refused the write."""


@dataclass(frozen=True)
class CardOrigin:
    """What the audit table knows about a card uuid."""

    rule_id: str | None
    rule_version: str | None


def _clip(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _utc_naive(text: str) -> datetime | None:
    """An RFC 3339 timestamp as naive UTC, or None when it does not parse."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        if parsed.tzinfo is None:
            return parsed
        return parsed.astimezone(UTC).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError):  # OverflowError: in UTC before year 1 or after 9999
        return None


def _audit_row(record: dict[str, Any]) -> tuple[dict[str, Any], datetime, str]:
    created = _utc_naive(str(record.get("timestamp") or "")) or utcnow()
    service_id = str(record.get("service_id") or "")[:_ID_MAX]
    row = {
        "created_at": created,
        "hook_instance": _clip(record.get("hook_instance"), 200),
        "service_id": service_id,
        "status": int(record.get("status") or 0),
        "rule_ids": [str(r) for r in record.get("rule_ids") or ()],
        "codes_recommended": [str(c) for c in record.get("codes_recommended") or ()],
        "card_uuids": [str(c) for c in record.get("card_uuids") or ()],
        "latency_ms": float(record.get("latency_ms") or 0.0),
        "fhir_calls": int(record.get("fhir_calls") or 0),
        "fhir_failures": int(record.get("fhir_failures") or 0),
    }
    return row, created, service_id


def failure_cause(exc: BaseException) -> str:
    """Why a database step failed, in a few words and without the URL or any row data:
    the exception class plus the driver's first line when it is a connection-level reason."""
    orig = getattr(exc, "orig", None) or exc.__cause__
    text = str(orig or "").strip().splitlines()[0] if str(orig or "").strip() else ""
    for marker in ("Connection refused", "timeout expired", "could not translate host name", "no answer within",
                   "server closed the connection", "canceling statement due to statement timeout",
                   "Name or service not known", "password authentication failed", "does not exist",
                   "database is locked", "unable to open database file", "no such table"):
        if marker.lower() in text.lower():
            return f"{type(exc).__name__}: {marker}"
    return type(exc).__name__


def audit_card_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-card rows of an audit record (ids only)."""
    rows = []
    for card in record.get("cards") or ():
        if not isinstance(card, dict):
            continue
        suggestions = [s[:_ID_MAX] for s in card.get("suggestion_uuids") or () if isinstance(s, str)]
        rows.append({
            "card_uuid": _clip(card.get("uuid"), _ID_MAX),
            "rule_id": _clip(card.get("rule_id"), _ID_MAX),
            "rule_version": _clip(card.get("rule_version"), _VERSION_MAX),
            "suggestion_uuids": suggestions,
        })
    return rows


class Store:
    """One database, shared by every request of a worker (SQLAlchemy's pool is thread-safe).

    Every database step runs under `bounded()` (engine.py): a database that hangs costs the
    caller at most the configured statement timeout, never a stalled worker.
    """

    # After a failed migration, retry at most this often (seconds) so a dead database is not
    # hammered by every request.
    RETRY_SCHEMA_S = 5.0

    def __init__(self, url: str, engine: Engine | None = None, clock: Callable[[], float] = time.monotonic,
                 timeouts: DbTimeouts | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url, timeouts)
        self.where = describe(url)
        self.in_memory = isinstance(self.engine.pool, StaticPool)
        self._clock = clock
        self._schema_ready = False
        self._last_attempt = float("-inf")
        self._lock = threading.Lock()

    # -- schema ---------------------------------------------------------------------------------

    def ensure_schema(self, *, force: bool = False) -> bool:
        """Create or migrate the schema; False (logged) when the database is unreachable."""
        if self._schema_ready:
            return True
        with self._lock:
            if self._schema_ready:
                return True
            now = self._clock()
            if not force and now - self._last_attempt < self.RETRY_SCHEMA_S:
                return False
            self._last_attempt = now
            try:
                migrate(self.engine)
            except SQLAlchemyError as exc:
                log.error("database at %s not available for migration (%s); retrying later",
                          self.where, failure_cause(exc))
                return False
            self._schema_ready = True
            return True

    def _require_schema(self) -> None:
        if not self.ensure_schema():
            raise StoreUnavailable("database schema not available")

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers and the schema is in place."""
        try:
            ping(self.engine)
        except SQLAlchemyError as exc:
            raise StoreUnavailable(failure_cause(exc)) from None
        self._require_schema()

    # -- audit ----------------------------------------------------------------------------------

    def write_audit(self, record: dict[str, Any]) -> None:
        """Store one hook call's audit record and its cards."""
        self.write_audits([record])

    def write_audits(self, records: list[dict[str, Any]]) -> None:
        """Store hook calls' audit records and their cards in one transaction (all or none), in order.

        Two statements a batch, whatever its size: the records in one multi-row insert that returns
        their row ids in the order given (SQLAlchemy's insertmanyvalues, on SQLite and PostgreSQL),
        then every card row of the batch in one executemany. A statement per record cost ~150 us of
        the worker's CPU each, and the writer holds the GIL while it works: measured under load it
        was 15% of a worker's samples with a statement per record.
        """
        self._require_schema()
        table = tables.audit_record
        rows = [_audit_row(record) for record in records]
        cards_of = [audit_card_rows(record) for record in records]
        try:
            with bounded(self.engine, begin=True) as conn:
                if not any(cards_of):
                    conn.execute(insert(table), [row for row, _, _ in rows])
                    return
                ids = conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                                   [row for row, _, _ in rows]).scalars().all()
                card_rows = [
                    {**card, "audit_id": audit_id, "created_at": created, "service_id": service_id}
                    for audit_id, (_, created, service_id), cards in zip(ids, rows, cards_of, strict=True)
                    for card in cards
                ]
                conn.execute(insert(tables.audit_card), card_rows)
        except SQLAlchemyError as exc:
            raise StoreUnavailable(failure_cause(exc)) from None

    def card_origin(self, card_uuid: str, service_id: str | None = None) -> CardOrigin | None:
        """The rule behind a card this service issued, or None when no audit row has the uuid."""
        self._require_schema()
        c = tables.audit_card.c
        where = c.card_uuid == card_uuid[:_ID_MAX]
        if service_id is not None:
            where = and_(where, c.service_id == service_id[:_ID_MAX])
        try:
            with bounded(self.engine) as conn:
                row = conn.execute(select(c.rule_id, c.rule_version).where(where).order_by(c.id.desc()).limit(1)).first()
        except SQLAlchemyError as exc:
            raise StoreUnavailable(failure_cause(exc)) from None
        return None if row is None else CardOrigin(row.rule_id, row.rule_version)

    def rule_of_card(self, card_uuid: str) -> str | None:
        """`service.metrics.CardRuleResolver`: the rule id of a card, None when unknown."""
        origin = self.card_origin(card_uuid)
        return origin.rule_id if origin else None

    # -- feedback -------------------------------------------------------------------------------

    def store_feedback(self, service_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store validated feedback items in one transaction (all or none); return the stored rows."""
        self._require_schema()
        received = utcnow()
        c = tables.audit_card.c
        try:
            with bounded(self.engine, begin=True) as conn:
                uuids = sorted({str(item["card"])[:_CARD_MAX] for item in items})
                origins: dict[str, CardOrigin] = {}
                if uuids:
                    found = conn.execute(
                        select(c.card_uuid, c.rule_id, c.rule_version)
                        .where(c.card_uuid.in_(uuids), c.service_id == service_id[:_ID_MAX])
                        .order_by(c.id)
                    )
                    for r in found:
                        origins[r.card_uuid] = CardOrigin(r.rule_id, r.rule_version)
                rows = [self._feedback_row(service_id, item, origins, received) for item in items]
                if rows:
                    conn.execute(insert(tables.feedback_item), rows)
        except SQLAlchemyError as exc:
            raise StoreUnavailable(failure_cause(exc)) from None
        return rows

    @staticmethod
    def _feedback_row(
        service_id: str, item: dict[str, Any], origins: dict[str, CardOrigin], received: datetime
    ) -> dict[str, Any]:
        card = str(item["card"])[:_CARD_MAX]
        origin = origins.get(card)
        raw_override = item.get("overrideReason")
        override: dict[str, Any] = raw_override if isinstance(raw_override, dict) else {}
        raw_reason = override.get("reason")
        reason: dict[str, Any] = raw_reason if isinstance(raw_reason, dict) else {}
        accepted = [
            str(s["id"])[:_ID_MAX] for s in item.get("acceptedSuggestions") or ()
            if isinstance(s, dict) and s.get("id") is not None
        ]
        stamp = str(item.get("outcomeTimestamp") or "")
        return {
            "received_at": received,
            "service_id": service_id[:_ID_MAX],
            "card_uuid": card,
            "card_known": origin is not None,
            "rule_id": origin.rule_id if origin else None,
            "rule_version": origin.rule_version if origin else None,
            "outcome": str(item.get("outcome"))[:20],
            "accepted_suggestions": accepted,
            "override_reason_code": _clip(reason.get("code"), _CODE_MAX),
            "override_reason_system": _clip(reason.get("system"), _SYSTEM_MAX),
            "override_reason_display": _clip(reason.get("display"), _DISPLAY_MAX),
            "override_comment": _clip(override.get("userComment"), _COMMENT_MAX),
            "outcome_timestamp": stamp[:64],
            "outcome_at": _utc_naive(stamp),
        }

    def dispose(self) -> None:
        self.engine.dispose()
