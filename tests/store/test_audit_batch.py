"""A batch of audit records goes in with two statements, and every card row still names its own
call: interleaved records with and without cards, on SQLite and on the real PostgreSQL."""
from __future__ import annotations

from service.store.db import Store

from .helpers import audit_rows, card_rows


def record(i: int, n_cards: int, timestamp: str = "2026-12-01T08:00:00+00:00") -> dict:
    cards = [{"uuid": f"card-{i}-{k}", "rule_id": f"RULE-{k}", "rule_version": "1", "suggestion_uuids": [f"s-{i}-{k}"]}
             for k in range(n_cards)]
    return {"hook_instance": f"hook-{i}", "service_id": "pump-visit-coding-order-sign", "status": 200,
            "rule_ids": sorted({c["rule_id"] for c in cards}), "codes_recommended": [],
            "card_uuids": [c["uuid"] for c in cards], "latency_ms": 1.0, "fhir_calls": 0, "fhir_failures": 0,
            "error": None, "cards": cards, "gate": "pump" if cards else "none", "repairs": [],
            "timestamp": timestamp}


def test_interleaved_records_keep_their_own_cards(any_store: Store) -> None:
    shape = [0, 2, 0, 0, 1, 3, 0, 1]  # cards per call, in call order
    any_store.write_audits([record(i, n) for i, n in enumerate(shape)])
    any_store.write_audits([record(100, 0), record(101, 2)])  # a second batch: ids continue
    audits = audit_rows(any_store.engine)
    assert [a["hook_instance"] for a in audits] == [f"hook-{i}" for i in range(len(shape))] + ["hook-100", "hook-101"]
    hook_of = {a["id"]: a["hook_instance"] for a in audits}
    cards = card_rows(any_store.engine)
    assert len(cards) == sum(shape) + 2
    for card in cards:  # card-<i>-<k> belongs to hook-<i>
        assert hook_of[card["audit_id"]] == "hook-" + card["card_uuid"].split("-")[1]
    assert [c["card_uuid"] for c in cards][:3] == ["card-1-0", "card-1-1", "card-4-0"]


def test_a_batch_without_cards_writes_only_records(any_store: Store) -> None:
    any_store.write_audits([record(i, 0) for i in range(5)])
    assert len(audit_rows(any_store.engine)) == 5 and card_rows(any_store.engine) == []
