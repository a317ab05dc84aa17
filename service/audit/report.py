"""report.html: one self-contained page for coders and compliance (no network: inline CSS, JS, SVG).

The numbers are aggregated here with DuckDB over the run's Parquet files (so a large audit does
not need its rows in memory); the page's script only draws them. The drill-down table holds the
visits with findings first, up to `MAX_TABLE_VISITS`, and says when it is cut.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import duckdb

from ..coding.rulebook import RuleBook
from ..coding.terminology import concepts
from .report_assets import PAGE
from .selection import sql_text

MAX_TABLE_VISITS = 20000


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def report_data(out: Path, run: dict[str, Any], book: RuleBook) -> dict[str, Any]:
    con = duckdb.connect()
    con.execute(f"CREATE VIEW f AS SELECT * FROM read_parquet({sql_text(out / 'findings.parquet')})")
    con.execute(f"CREATE VIEW v AS SELECT * FROM read_parquet({sql_text(out / 'visits.parquet')})")
    titles = {r.id: r.title for r in book.rules}
    labels = {c.code: c.display for c in concepts().values()}
    per_rule = _rows(con, """SELECT rule_id AS rule, severity, count(*) AS n FROM f GROUP BY ALL ORDER BY rule, severity""")
    per_month = _rows(con, """SELECT strftime(date_of_service, '%Y-%m') AS month, severity, count(*) AS n
                              FROM f GROUP BY ALL ORDER BY month""")
    visits_month = _rows(con, """SELECT strftime(date_of_service, '%Y-%m') AS month, count(*) AS visits,
                                 count(*) FILTER (WHERE NOT clean) AS flagged FROM v GROUP BY ALL ORDER BY month""")
    matrix = _rows(con, """SELECT billed_service AS billed, expected_service AS expected, count(*) AS n
                           FROM v GROUP BY ALL ORDER BY billed, expected""")
    gaps = _rows(con, """SELECT e AS element, count(*) AS n FROM (SELECT unnest(missing_elements) AS e FROM f)
                         GROUP BY ALL ORDER BY n DESC, element""")
    performers = _rows(con, """SELECT performer_class AS performer, count(*) AS visits,
                               count(*) FILTER (WHERE NOT clean) AS flagged, sum(findings) AS findings
                               FROM v GROUP BY ALL ORDER BY visits DESC""")
    dollars = _rows(con, """SELECT rule_id AS rule, sum(est_payment_difference) AS amount, count(*) AS n
                            FROM f WHERE est_payment_difference IS NOT NULL GROUP BY ALL ORDER BY amount""")
    visits = _rows(con, f"""SELECT v.visit_id AS visit, v.encounter_id AS encounter, v.patient_id AS patient,
            strftime(v.date_of_service, '%Y-%m-%d') AS date, v.performer_class AS performer,
            v.billed_codes AS billed, v.expected_service AS expected, v.worst_severity AS severity,
            v.rule_ids AS rules, v.est_payment_difference AS amount,
            coalesce((SELECT list({{'rule': f.rule_id, 'version': f.rule_version, 'kind': f.kind,
                      'severity': f.severity, 'code': f.recommended_code, 'replaces': f.replaces,
                      'missing': f.missing_elements, 'amount': f.est_payment_difference}})
                      FROM f WHERE f.visit_id = v.visit_id), []) AS findings
            FROM v ORDER BY v.clean, CASE v.worst_severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
                     v.date_of_service DESC, v.visit_id LIMIT {MAX_TABLE_VISITS}""")
    con.close()
    for v in visits:
        v["billed"] = list(v["billed"] or [])
        v["rules"] = list(v["rules"] or [])
    return {
        "run": {k: run.get(k) for k in ("started_at", "engine", "counts", "versions", "fee_schedule")},
        "titles": titles,
        "labels": labels,
        "perRule": per_rule,
        "perMonth": per_month,
        "visitsPerMonth": visits_month,
        "matrix": matrix,
        "gaps": gaps,
        "performers": performers,
        "dollars": dollars,
        "visits": visits,
        "visitsCut": run["counts"].get("pump_visits", 0) > MAX_TABLE_VISITS,
        "maxVisits": MAX_TABLE_VISITS,
    }


def _json_for_script(data: Any) -> str:
    """JSON safe inside <script>: no '</' or HTML comment openers can end the element early."""
    text = json.dumps(data, default=str, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_report(out: Path, run: dict[str, Any], book: RuleBook) -> Path:
    """The page for a finished run; `book` is the rule book the run evaluated with (rule titles)."""
    data = report_data(out, run, book)
    title = f"Pump visit coding audit, {html.escape(str(run.get('started_at', ''))[:10])}"
    page = PAGE.replace("__TITLE__", title).replace("__DATA__", _json_for_script(data))
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
