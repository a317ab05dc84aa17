"""Retention: remove audit records (with their cards) and feedback items older than a cut-off.

The audit store grows with every answered pump visit; a site keeps it as long as its own policy
says (`pumpcds store-prune --older-than-days N`, run on a schedule). Rows go in batches, each its
own short transaction under the usual database deadline, so a large backlog never holds a lock
that stalls the audit writer of a running service. Feedback on a card whose audit row is gone
still stores (the card is then reported as not traced to a rule).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select

from . import tables
from .engine import bounded


@dataclass(frozen=True)
class Pruned:
    audit_records: int = 0
    audit_cards: int = 0
    feedback_items: int = 0


def count_older(engine: Engine, before: datetime) -> Pruned:
    """What `prune` would remove (a dry run)."""
    record, card, feedback = tables.audit_record, tables.audit_card, tables.feedback_item
    old_records = select(record.c.id).where(record.c.created_at < before)
    with bounded(engine) as conn:
        return Pruned(
            conn.execute(select(func.count()).select_from(old_records.subquery())).scalar_one(),
            conn.execute(select(func.count()).select_from(card).where(card.c.audit_id.in_(old_records))).scalar_one(),
            conn.execute(select(func.count()).select_from(feedback).where(feedback.c.received_at < before)).scalar_one(),
        )


def prune(engine: Engine, before: datetime, *, batch: int = 2000) -> Pruned:
    """Delete audit records created before `before` (naive UTC) with their cards, and feedback
    items received before it; return how many rows of each went."""
    record, card, feedback = tables.audit_record, tables.audit_card, tables.feedback_item
    cards = 0

    def records_and_their_cards(conn: Connection, ids: list[int]) -> int:
        nonlocal cards
        cards += conn.execute(delete(card).where(card.c.audit_id.in_(ids))).rowcount or 0
        return conn.execute(delete(record).where(record.c.id.in_(ids))).rowcount or 0

    def feedback_items(conn: Connection, ids: list[int]) -> int:
        return conn.execute(delete(feedback).where(feedback.c.id.in_(ids))).rowcount or 0

    records = _in_batches(engine, record.c.id, record.c.created_at < before, batch, records_and_their_cards)
    items = _in_batches(engine, feedback.c.id, feedback.c.received_at < before, batch, feedback_items)
    return Pruned(records, cards, items)


def _in_batches(engine: Engine, id_column: Any, older: Any, batch: int,
                remove: Callable[[Connection, list[int]], int]) -> int:
    """Remove the rows `older` selects, `batch` ids per transaction, oldest first; how many went."""
    removed = 0
    while True:
        with bounded(engine, begin=True) as conn:
            ids = list(conn.execute(select(id_column).where(older).order_by(id_column).limit(batch)).scalars())
            if not ids:
                return removed
            removed += remove(conn, ids)
