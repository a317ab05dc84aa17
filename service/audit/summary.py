"""The summary printed when an audit ends: counts, findings per rule, where the outputs are."""
from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from .run import AuditResult


def print_summary(result: AuditResult, console: Console, compare: Path | None = None) -> None:
    c = result.run["counts"]
    t = result.run["timings_s"]
    rate = c["evaluated"] / t["evaluate"] if t.get("evaluate") else 0
    console.print(
        f"[bold]{c['pump_visits']}[/] pump visits among {c['visits']} visits ({c['resources']} resources, "
        f"{c['files']} files) in {t['total']:.1f} s ({rate:,.0f} visits/s evaluated); "
        f"{c['visits_with_findings']} with findings, {c['clean_visits']} clean, {c['findings']} findings",
        highlight=False,
    )
    if c["findings_by_rule"]:
        table = Table(title="Findings per rule", title_justify="left")
        table.add_column("rule")
        table.add_column("findings", justify="right")
        for rule, n in c["findings_by_rule"].items():
            table.add_row(rule, str(n))
        console.print(table)
    if c.get("unreadable_lines"):
        console.print(f"{c['unreadable_lines']} NDJSON lines were not valid JSON and were skipped", highlight=False)
    for problem in result.run.get("input_problems", ()):
        console.print(f"skipped: {problem}", highlight=False)
    if compare is not None:
        print_changes(compare, result.out, console)
    console.print(f"outputs in {result.out}: findings.parquet, findings.csv, visits.parquet, report.html, run.json",
                  highlight=False)


def print_changes(previous: Path, current: Path, console: Console) -> None:
    from .compare import compare

    c = compare(previous, current)
    console.print(
        f"[bold]Compared with {previous}[/]: {c.new} new findings, {c.resolved} resolved, {c.unchanged} unchanged; "
        f"{c.newly_flagged_visits} visits newly flagged, {c.newly_clean_visits} newly clean, {c.new_visits} visits not in the earlier audit",
        highlight=False,
    )
    for rule, (before, now) in c.rule_versions.items():
        console.print(f"  rule {rule}: version {before or '(none)'} -> {now or '(removed)'}", highlight=False)
    if c.by_rule:
        table = Table(title="Changes per rule", title_justify="left")
        for name in ("rule", "new", "resolved"):
            table.add_column(name, justify="left" if name == "rule" else "right")
        for row in c.by_rule:
            table.add_row(row["rule"], str(row["new"]), str(row["resolved"]))
        console.print(table)
    console.print(f"  the changed findings are listed in {current / 'changes.csv'}", highlight=False)
