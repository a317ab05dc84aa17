"""Feedback report: how often each rule's cards are accepted or overridden, and why they are overridden.

Rates are per feedback item (the spec lets a client send feedback on one card more than once; each
item is one clinician decision). Cards issued come from the audit table, so a rule whose cards are
never acted upon shows many cards and few feedback items.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO

from sqlalchemy import Engine, case, func, select

from . import tables

UNKNOWN = "(unknown)"
NO_REASON = "(no reason given)"


@dataclass(frozen=True)
class RuleRow:
    rule_id: str
    rule_version: str
    cards_issued: int
    feedback_items: int
    accepted: int
    overridden: int

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.feedback_items if self.feedback_items else None

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.feedback_items if self.feedback_items else None


@dataclass(frozen=True)
class ReasonRow:
    code: str
    system: str
    display: str
    count: int
    share: float  # of all overridden items in the period


@dataclass(frozen=True)
class FeedbackReport:
    since: date | None
    rules: list[RuleRow]
    reasons: list[ReasonRow]


def _key(value: str | None) -> str:
    return value if value else UNKNOWN


def feedback_report(engine: Engine, since: date | None = None) -> FeedbackReport:
    """Aggregate audit cards and feedback items (on or after ``since``, UTC) per rule and per reason."""
    start = datetime(since.year, since.month, since.day) if since else None
    card, fb = tables.audit_card.c, tables.feedback_item.c
    issued_q = select(card.rule_id, card.rule_version, func.count()).group_by(card.rule_id, card.rule_version)
    fb_q = select(
        fb.rule_id,
        fb.rule_version,
        func.count(),
        func.sum(case((fb.outcome == "accepted", 1), else_=0)),
        func.sum(case((fb.outcome == "overridden", 1), else_=0)),
    ).group_by(fb.rule_id, fb.rule_version)
    reason_q = (
        select(fb.override_reason_code, fb.override_reason_system, fb.override_reason_display, func.count())
        .where(fb.outcome == "overridden")
        .group_by(fb.override_reason_code, fb.override_reason_system, fb.override_reason_display)
    )
    if start is not None:
        issued_q = issued_q.where(card.created_at >= start)
        fb_q = fb_q.where(fb.received_at >= start)
        reason_q = reason_q.where(fb.received_at >= start)

    counts: dict[tuple[str, str], list[int]] = {}
    with engine.connect() as conn:
        for rule_id, version, n in conn.execute(issued_q):
            counts.setdefault((_key(rule_id), _key(version)), [0, 0, 0, 0])[0] += int(n)
        for rule_id, version, n, accepted, overridden in conn.execute(fb_q):
            row = counts.setdefault((_key(rule_id), _key(version)), [0, 0, 0, 0])
            row[1] += int(n)
            row[2] += int(accepted or 0)
            row[3] += int(overridden or 0)
        reason_rows = list(conn.execute(reason_q))

    rules = [RuleRow(rid, ver, *vals) for (rid, ver), vals in counts.items()]
    rules.sort(key=lambda r: (r.rule_id == UNKNOWN, r.rule_id, r.rule_version))
    total_overridden = sum(int(r[3]) for r in reason_rows)
    reasons = [
        ReasonRow(code or NO_REASON, system or "", display or "", int(n), int(n) / total_overridden)
        for code, system, display, n in reason_rows
    ]
    reasons.sort(key=lambda r: (-r.count, r.code == NO_REASON, r.code, r.system))
    return FeedbackReport(since, rules, reasons)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


RULE_HEADER = ("rule", "version", "cards issued", "feedback", "accepted", "overridden", "acceptance", "override")
REASON_HEADER = ("override reason", "system", "display", "count", "share")


def rule_cells(report: FeedbackReport) -> list[tuple[str, ...]]:
    return [
        (r.rule_id, r.rule_version, str(r.cards_issued), str(r.feedback_items), str(r.accepted),
         str(r.overridden), _pct(r.acceptance_rate), _pct(r.override_rate))
        for r in report.rules
    ]


def reason_cells(report: FeedbackReport) -> list[tuple[str, ...]]:
    return [(r.code, r.system, r.display, str(r.count), _pct(r.share)) for r in report.reasons]


def _table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]], numeric_from: int) -> list[str]:
    rows = list(rows)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i >= numeric_from else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]


def render_text(report: FeedbackReport) -> str:
    """Two aligned tables: per rule, then per override reason."""
    since = f" since {report.since.isoformat()}" if report.since else ""
    out = [f"Feedback per rule{since}"]
    out += _table(RULE_HEADER, rule_cells(report), 2) if report.rules else ["(no cards issued and no feedback)"]
    out += ["", f"Override reasons{since}"]
    out += _table(REASON_HEADER, reason_cells(report), 3) if report.reasons else ["(no overrides)"]
    return "\n".join(out) + "\n"


def write_csv(report: FeedbackReport, stream: IO[str]) -> None:
    """One CSV with a `section` column (rule | override_reason) so both tables fit one file.

    Rates are plain fractions (0..1, empty when there was no feedback) for spreadsheets.
    """
    writer = csv.writer(stream)
    writer.writerow(["section", "rule_id", "rule_version", "cards_issued", "feedback_items", "accepted",
                     "overridden", "acceptance_rate", "override_rate",
                     "reason_code", "reason_system", "reason_display", "count", "share"])

    def frac(value: float | None) -> str:
        return "" if value is None else f"{value:.4f}"

    for r in report.rules:
        writer.writerow(["rule", r.rule_id, r.rule_version, r.cards_issued, r.feedback_items, r.accepted,
                         r.overridden, frac(r.acceptance_rate), frac(r.override_rate), "", "", "", "", ""])
    for reason in report.reasons:
        writer.writerow(["override_reason", "", "", "", "", "", "", "", "",
                         reason.code, reason.system, reason.display, reason.count, frac(reason.share)])
