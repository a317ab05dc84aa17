"""Retention: `pumpcds store-prune` removes audit records (with their cards) and feedback older
than the period, keeps the rest, and can count first; on SQLite and on the real PostgreSQL."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from service.cli import main
from service.store import tables
from service.store.db import Store
from service.store.retention import count_older, prune

from .helpers import accepted, audit_rows, card_rows, feedback_rows
from .test_audit_batch import record

NOW = datetime.now(UTC).replace(microsecond=0)


def _at(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def _fill(store: Store) -> None:
    """Audit records 400, 100 and 1 days old (2, 1 and 3 cards), feedback received 400 and 1 days ago."""
    store.write_audits([record(1, 2, _at(400)), record(2, 1, _at(100)), record(3, 3, _at(1)), record(4, 0, _at(400))])
    store.store_feedback("pump-visit-coding-order-sign", [accepted("card-1-0", "s-1-0"), accepted("card-3-0", "s-3-0")])
    with store.engine.begin() as conn:  # the first item as if received 400 days ago
        first = min(r["id"] for r in feedback_rows(store.engine))
        conn.execute(update(tables.feedback_item).where(tables.feedback_item.c.id == first)
                     .values(received_at=(NOW - timedelta(days=400)).replace(tzinfo=None)))


def test_older_rows_go_with_their_cards_newer_rows_stay(any_store: Store) -> None:
    _fill(any_store)
    cutoff = (NOW - timedelta(days=365)).replace(tzinfo=None)
    counted = count_older(any_store.engine, cutoff)
    assert (counted.audit_records, counted.audit_cards, counted.feedback_items) == (2, 2, 1)
    assert len(audit_rows(any_store.engine)) == 4  # counting removed nothing
    done = prune(any_store.engine, cutoff, batch=1)  # one record a transaction: the loop is exercised
    assert done == counted
    assert [a["hook_instance"] for a in audit_rows(any_store.engine)] == ["hook-2", "hook-3"]
    assert sorted(c["card_uuid"] for c in card_rows(any_store.engine)) == ["card-2-0", "card-3-0", "card-3-1", "card-3-2"]
    assert [f["card_uuid"] for f in feedback_rows(any_store.engine)] == ["card-3-0"]
    assert prune(any_store.engine, cutoff) == type(done)()  # nothing left to remove


def test_the_command_counts_then_prunes(any_store: Store, capsys) -> None:
    _fill(any_store)
    url = any_store.engine.url.render_as_string(hide_password=False)
    assert main(["store-prune", "--older-than-days", "30", "--dry-run", "--database-url", url]) == 0
    assert "would remove 3 audit record(s) with 3 card(s) and 1 feedback item(s)" in capsys.readouterr().out
    assert len(audit_rows(any_store.engine)) == 4
    assert main(["store-prune", "--older-than-days", "30", "--database-url", url]) == 0
    assert "removed 3 audit record(s) with 3 card(s) and 1 feedback item(s)" in capsys.readouterr().out
    assert [a["hook_instance"] for a in audit_rows(any_store.engine)] == ["hook-3"]


def test_a_period_under_one_day_is_refused(capsys) -> None:
    import pytest

    with pytest.raises(SystemExit):
        main(["store-prune", "--older-than-days", "0"])
    assert "at least 1 day" in capsys.readouterr().err
