"""Shared pieces of the store tests: hook requests that yield cards, and reading the stored rows."""
from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, select, text

from bench.visits import order_sign_request
from service.cdshooks.models import Card, CardMark, Source, Suggestion
from service.cdshooks.services import ORDER_SIGN_SERVICE_ID
from service.store import tables

SERVICE_URL = f"/cds-services/{ORDER_SIGN_SERVICE_ID}"
FEEDBACK_URL = f"{SERVICE_URL}/feedback"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def closed_port() -> int:
    """A loopback port nothing listens on (bound and released), so connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def down_database_url() -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test"


def request_with_a_card() -> dict[str, Any]:
    """A synthetic visit plus one Procedure the parser must skip: at least one (data-quality) card."""
    body = order_sign_request(30)
    body["prefetch"]["procedures"]["entry"].append(
        {"resource": {"resourceType": "Procedure", "id": "bad-1", "status": "not-a-status"}})
    return body


class MarkedCards:
    """Card builder standing in for the template builder: cards marked with rule id and version,
    suggestions with uuids, exactly as the builder's contract says (`Card.mark`, extension.pumpcds)."""

    def __init__(self, specs: list[tuple[str | None, str | None, int]]) -> None:
        self.specs = specs  # (rule id, rule version, number of suggestions); rule None: no mark
        self.issued: list[dict[str, Any]] = []

    def build(self, findings: Any, request: Any, resources: Any, visit: Any = None) -> list[Card]:
        cards = []
        for rule_id, version, n_suggestions in self.specs:
            suggestions = tuple(Suggestion(f"option {i}") for i in range(n_suggestions))
            cards.append(Card(
                summary="test card", indicator="warning", source=Source("pumpcds"),
                mark=CardMark(rule_id, version or "", "warning") if rule_id is not None else None,
                suggestions=suggestions, selection_behavior="at-most-one" if suggestions else None,
            ))
        self.issued.extend(c.as_dict() for c in cards)
        return cards


def rows(engine: Engine, table: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).order_by(table.c.id))]


def audit_rows(engine: Engine) -> list[dict[str, Any]]:
    return rows(engine, tables.audit_record)


def card_rows(engine: Engine) -> list[dict[str, Any]]:
    return rows(engine, tables.audit_card)


def feedback_rows(engine: Engine) -> list[dict[str, Any]]:
    return rows(engine, tables.feedback_item)


def accepted(card: str, suggestion: str, when: str = "2026-11-20T15:00:00Z") -> dict[str, Any]:
    return {"card": card, "outcome": "accepted", "acceptedSuggestions": [{"id": suggestion}], "outcomeTimestamp": when}


def overridden(card: str, reason: dict[str, str] | None = None, comment: str | None = None,
               when: str = "2026-11-20T15:00:00Z") -> dict[str, Any]:
    item: dict[str, Any] = {"card": card, "outcome": "overridden", "outcomeTimestamp": when}
    if reason is not None or comment is not None:
        item["overrideReason"] = {}
        if reason is not None:
            item["overrideReason"]["reason"] = reason
        if comment is not None:
            item["overrideReason"]["userComment"] = comment
    return item


@contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A database URL on the real PostgreSQL confined to a fresh schema, dropped afterwards, so
    parallel runs never see each other's rows. Callers skip first when PostgreSQL is unreachable."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
