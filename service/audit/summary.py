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
    console.print(f"outputs in {result.out}: findings.parquet, findings.csv, visits.parquet, report.html, run.json",
                  highlight=False)
