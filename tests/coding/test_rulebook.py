"""The rule data is complete and consistent, and the docs describe every rule as it is."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from service.coding.checks import REGISTRY, Role
from service.coding.codetable import default_code_table
from service.coding.rulebook import RuleBook
from service.coding.terminology import codesystem, concepts

ROOT = Path(__file__).resolve().parents[2]


def test_every_rule_has_a_registered_check_and_a_checkable_source() -> None:
    book = RuleBook.load()
    for rule in book.rules:
        assert rule.check in REGISTRY, rule.id
        assert len(rule.source) > 20, rule.id
    assert [r.id for r in book.rules if REGISTRY[r.check].role is Role.SELECT] == \
        ["SEL-SYSTEMIC", "SEL-INTRAVENTRICULAR", "SEL-NONPROG", "SEL-MATRIX"]  # tried in this order


def test_rule_urls_point_to_the_rule_pages() -> None:
    book = RuleBook.load(base_url="https://cds.example.org/")
    assert book.get("SEL-MATRIX").ref.url == "https://cds.example.org/docs/rules/SEL-MATRIX"


def test_rules_in_force_follow_their_dates() -> None:
    book = RuleBook.load()
    assert "DX-G35" not in book.in_force(dt.date(2025, 9, 30))
    assert "DX-G35" in book.in_force(dt.date(2025, 10, 1))
    assert book.in_force(dt.date(2011, 12, 31)).keys().isdisjoint({"SEL-MATRIX", "PERF-QHP-STAFF"})


def test_selection_rows_name_codes_of_the_code_table() -> None:
    table = default_code_table()
    for rule in RuleBook.load().rules:
        for row in rule.params.get("rows", ()):
            assert row["code"] is None or table.get(row["code"]) is not None, (rule.id, row)


def test_docs_list_every_rule_with_its_version() -> None:
    text = (ROOT / "docs" / "rules.md").read_text()
    for rule in RuleBook.load().rules:
        assert re.search(rf"\| `{re.escape(rule.id)}` \| {re.escape(rule.version)} \|", text), rule.id


def test_codesystem_is_consistent() -> None:
    cs = codesystem()
    leaves = concepts()
    assert cs["count"] == len(leaves) + len(cs["concept"])
    assert len(set(leaves)) == len(leaves)


def test_docs_list_every_check_with_its_params_and_rules() -> None:
    text = (ROOT / "docs" / "rules.md").read_text()
    book = RuleBook.load()
    for check in REGISTRY.values():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{check.name}` |")), None)
        assert row is not None, check.name
        for name in check.params:
            assert f"`{name}`" in row, (check.name, name)
        for rule in book.rules:
            assert (f"`{rule.id}`" in row) == (rule.check == check.name), (check.name, rule.id)
