"""`--compare PREVIOUS_DIR`: what changed since an earlier audit (e.g. after a rule or CMS update).

A finding is the same when visit, rule, kind, recommended code, replaced codes and missing
elements agree; a new rule version alone is reported as a version change, not as a new finding.
The diff runs in DuckDB over both runs' Parquet files; the result goes to `changes.csv` (patient
data: it stays in the output folder) and counts to the summary.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from .selection import sql_text

_KEY = "visit_id, rule_id, kind, coalesce(recommended_code, '') AS code, list_sort(replaces) AS replaces, missing_elements"


@dataclass
class Changes:
    new: int = 0
    resolved: int = 0
    unchanged: int = 0
    newly_flagged_visits: int = 0
    newly_clean_visits: int = 0
    new_visits: int = 0
    rule_versions: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    by_rule: list[dict[str, Any]] = field(default_factory=list)  # rule, new, resolved

    def as_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k != "rule_versions"},
                "rule_versions": {k: {"previous": a, "now": b} for k, (a, b) in self.rule_versions.items()}}


def compare(previous: Path, current: Path) -> Changes:
    con = duckdb.connect()
    for name, folder in (("prev", previous), ("cur", current)):
        con.execute(f"CREATE VIEW {name}_f AS SELECT {_KEY} FROM read_parquet({sql_text(folder / 'findings.parquet')})")
        con.execute(f"CREATE VIEW {name}_v AS SELECT visit_id, clean FROM read_parquet({sql_text(folder / 'visits.parquet')})")
    c = Changes()
    c.new, c.resolved, c.unchanged = con.execute("""
        SELECT (SELECT count(*) FROM (SELECT * FROM cur_f EXCEPT ALL SELECT * FROM prev_f)),
               (SELECT count(*) FROM (SELECT * FROM prev_f EXCEPT ALL SELECT * FROM cur_f)),
               (SELECT count(*) FROM (SELECT * FROM cur_f INTERSECT ALL SELECT * FROM prev_f))""").fetchone() or ()
    c.newly_flagged_visits, c.newly_clean_visits, c.new_visits = con.execute("""
        SELECT count(*) FILTER (WHERE p.clean AND NOT n.clean), count(*) FILTER (WHERE NOT p.clean AND n.clean),
               count(*) FILTER (WHERE p.visit_id IS NULL)
        FROM cur_v n LEFT JOIN prev_v p USING (visit_id)""").fetchone() or ()
    rows = con.execute("""
        SELECT rule_id, sum(CASE WHEN side = 'new' THEN 1 ELSE 0 END), sum(CASE WHEN side = 'resolved' THEN 1 ELSE 0 END)
        FROM (SELECT rule_id, 'new' AS side FROM (SELECT * FROM cur_f EXCEPT ALL SELECT * FROM prev_f)
              UNION ALL SELECT rule_id, 'resolved' FROM (SELECT * FROM prev_f EXCEPT ALL SELECT * FROM cur_f))
        GROUP BY rule_id ORDER BY rule_id""").fetchall()
    c.by_rule = [{"rule": r, "new": int(n), "resolved": int(s)} for r, n, s in rows]
    con.execute(f"""COPY (
        SELECT 'new' AS change, * FROM (SELECT * FROM cur_f EXCEPT ALL SELECT * FROM prev_f)
        UNION ALL SELECT 'resolved', * FROM (SELECT * FROM prev_f EXCEPT ALL SELECT * FROM cur_f)
        ORDER BY visit_id, rule_id) TO {sql_text(current / 'changes.csv')} (HEADER)""")
    con.close()
    versions = []
    for folder in (previous, current):
        try:
            versions.append(json.loads((folder / "run.json").read_text())["versions"]["rules"])
        except (OSError, KeyError, ValueError):
            versions.append({})
    before, now = versions
    c.rule_versions = {r: (before.get(r), now.get(r)) for r in sorted(set(before) | set(now)) if before.get(r) != now.get(r)}
    (current / "changes.json").write_text(json.dumps({"previous": str(previous), **c.as_dict()}, indent=2) + "\n")
    return c
