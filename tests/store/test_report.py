"""`pumpcds feedback-report`: numbers checked against a known set of cards and feedback."""
from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from service.cli import main
from service.store import tables
from service.store.db import Store
from service.store.report import NO_REASON, UNKNOWN, feedback_report, render_text

from .helpers import accepted, overridden

SERVICE = "pump-visit-coding-order-sign"
DUP = {"code": "dup", "system": "urn:test:reasons", "display": "Already billed"}
NA = {"code": "na", "system": "urn:test:reasons", "display": "Not applicable"}


def issue(store: Store, *cards: tuple[str, str | None, str | None]) -> None:
    """One audited hook call returning cards (uuid, rule id, rule version)."""
    store.write_audit({
        "service_id": SERVICE, "status": 200, "hook_instance": "hi",
        "card_uuids": [c[0] for c in cards],
        "cards": [{"uuid": u, "rule_id": r, "rule_version": v, "suggestion_uuids": [f"{u}-s"]} for u, r, v in cards],
    })


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'report.db'}")
    assert store.ensure_schema()
    # rule A v1: 4 cards; rule A v2: 1 card; rule B v1: 2 cards; one unmarked card
    issue(store, ("a1", "A", "1"), ("a2", "A", "1"), ("b1", "B", "1"))
    issue(store, ("a3", "A", "1"), ("a4", "A", "1"), ("a5", "A", "2"), ("b2", "B", "1"), ("u1", None, None))
    store.store_feedback(SERVICE, [
        accepted("a1", "a1-s"),
        overridden("a2", DUP),
        overridden("a3", DUP, "billed last week"),
        overridden("a4"),                      # no reason at all
        accepted("a5", "a5-s"),
        overridden("b1", NA),
        overridden("b2", comment="comment only"),
        accepted("zz-unknown", "x"),          # a card this service never issued
    ])
    return store


def test_report_counts_per_rule_and_version(store: Store):
    report = feedback_report(store.engine)
    by_rule = {(r.rule_id, r.rule_version): r for r in report.rules}
    assert set(by_rule) == {("A", "1"), ("A", "2"), ("B", "1"), (UNKNOWN, UNKNOWN)}
    a1 = by_rule[("A", "1")]
    assert (a1.cards_issued, a1.feedback_items, a1.accepted, a1.overridden) == (4, 4, 1, 3)
    assert a1.acceptance_rate == pytest.approx(0.25) and a1.override_rate == pytest.approx(0.75)
    a2 = by_rule[("A", "2")]
    assert (a2.cards_issued, a2.feedback_items, a2.accepted, a2.overridden) == (1, 1, 1, 0)
    b1 = by_rule[("B", "1")]
    assert (b1.cards_issued, b1.feedback_items, b1.accepted, b1.overridden) == (2, 2, 0, 2)
    unknown = by_rule[(UNKNOWN, UNKNOWN)]
    # the unmarked card was issued without feedback; the unknown card's feedback has no card
    assert (unknown.cards_issued, unknown.feedback_items, unknown.accepted, unknown.overridden) == (1, 1, 1, 0)
    assert [r.rule_id for r in report.rules][-1] == UNKNOWN


def test_report_counts_and_shares_per_override_reason(store: Store):
    reasons = {(r.code, r.system): r for r in feedback_report(store.engine).reasons}
    assert {k: v.count for k, v in reasons.items()} == {
        ("dup", "urn:test:reasons"): 2, ("na", "urn:test:reasons"): 1, (NO_REASON, ""): 2}
    assert reasons[("dup", "urn:test:reasons")].share == pytest.approx(2 / 5)
    assert reasons[("dup", "urn:test:reasons")].display == "Already billed"
    assert sum(r.share for r in reasons.values()) == pytest.approx(1.0)


def test_since_leaves_out_older_cards_and_feedback(store: Store):
    old = datetime(2026, 1, 1)
    with store.engine.begin() as conn:
        conn.execute(update(tables.audit_card).where(tables.audit_card.c.card_uuid.in_(["a1", "a2", "b1"]))
                     .values(created_at=old))
        conn.execute(update(tables.feedback_item).where(tables.feedback_item.c.card_uuid.in_(["a1", "a2"]))
                     .values(received_at=old))
    report = feedback_report(store.engine, since=date(2026, 6, 1))
    by_rule = {(r.rule_id, r.rule_version): r for r in report.rules}
    assert (by_rule[("A", "1")].cards_issued, by_rule[("A", "1")].feedback_items) == (2, 2)
    assert (by_rule[("B", "1")].cards_issued, by_rule[("B", "1")].feedback_items) == (1, 2)
    assert {(r.code, r.count) for r in report.reasons} == {("dup", 1), ("na", 1), (NO_REASON, 2)}


def test_text_table_is_aligned(store: Store):
    text = render_text(feedback_report(store.engine))
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rule "))
    rule_lines = lines[header + 2: header + 6]
    # every rule line ends its "override" column at the header's right edge
    assert all(len(line) == len(lines[header]) for line in rule_lines), rule_lines
    assert "75.0%" in text and "40.0%" in text


def test_cli_prints_the_table_and_writes_csv(store: Store, tmp_path: Path, capsys):
    out = tmp_path / "report.csv"
    assert main(["feedback-report", "--database-url", store.url, "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Feedback per rule" in printed and "Override reasons" in printed
    with out.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    rule_a1 = next(r for r in rows if r["section"] == "rule" and r["rule_id"] == "A" and r["rule_version"] == "1")
    assert (rule_a1["cards_issued"], rule_a1["feedback_items"], rule_a1["acceptance_rate"], rule_a1["override_rate"]) \
        == ("4", "4", "0.2500", "0.7500")
    dup = next(r for r in rows if r["section"] == "override_reason" and r["reason_code"] == "dup")
    assert (dup["count"], dup["share"], dup["reason_display"]) == ("2", "0.4000", "Already billed")


def test_cli_since_must_be_a_date(capsys):
    with pytest.raises(SystemExit):
        main(["feedback-report", "--since", "last week"])
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_cli_on_an_empty_database_reports_nothing(tmp_path: Path, capsys):
    assert main(["feedback-report", "--database-url", f"sqlite:///{tmp_path / 'empty.db'}", "--since", "2026-01-01"]) == 0
    assert "(no cards issued and no feedback)" in capsys.readouterr().out
