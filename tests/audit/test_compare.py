"""--compare: an audit re-run shows what changed; the progress display and summary say counts only."""
from __future__ import annotations

import json
from pathlib import Path

from service.cli import main
from tests.audit.exports import sample_resources, write_ndjson

CHARGE = "encounter-close-95990-and-62370-by-rn"
MISSING = "encounter-close-missing-charge"  # no charge: SEL-MATRIX recommends 62368
INCIDENT = "encounter-close-medicare-rn-without-supervisor"


def _charge_62368() -> dict:
    return {
        "resourceType": "ChargeItem", "id": "charge-stillwater-added", "status": "billable",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62368"}]},
        "subject": {"reference": "Patient/pt-stillwater"}, "context": {"reference": "Encounter/enc-stillwater-0318"},
        "occurrenceDateTime": "2026-03-18T13:40:00-05:00",
    }


def test_compare_shows_new_and_resolved_findings_and_rule_versions(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    before = write_ndjson(sample_resources(CHARGE) + sample_resources(MISSING), tmp_path / "before")
    after = write_ndjson(sample_resources(CHARGE) + sample_resources(MISSING) + sample_resources(INCIDENT)
                         + [_charge_62368()], tmp_path / "after")
    assert main(["audit", str(before), "--out", str(tmp_path / "a"), "--workers", "1", "--quiet"]) == 0
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    run["versions"]["rules"]["SEL-MATRIX"] = "0-previous"  # as if the rule changed since
    (tmp_path / "a" / "run.json").write_text(json.dumps(run))
    capsys.readouterr()
    assert main(["audit", str(after), "--out", str(tmp_path / "b"), "--workers", "1", "--compare", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    changes = json.loads((tmp_path / "b" / "changes.json").read_text())
    assert (changes["new"], changes["resolved"], changes["unchanged"]) == (1, 1, 1)
    assert changes["newly_clean_visits"] == 1 and changes["new_visits"] == 1
    assert {r["rule"]: (r["new"], r["resolved"]) for r in changes["by_rule"]} == {
        "PERF-INCIDENT-TO": (1, 0), "SEL-MATRIX": (0, 1)}
    assert changes["rule_versions"]["SEL-MATRIX"]["previous"] == "0-previous"
    assert "1 new findings, 1 resolved, 1 unchanged" in err and "rule SEL-MATRIX: version 0-previous" in err
    lines = (tmp_path / "b" / "changes.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("change,visit_id")
    assert "visits evaluated" in err  # the progress display
    assert "pt-" not in err  # no patient ids on the terminal


def test_compare_needs_an_audit_folder(tmp_path: Path, capsys) -> None:
    assert main(["audit", str(tmp_path), "--out", str(tmp_path / "o"), "--compare", str(tmp_path / "nothing")]) == 2
    assert "no findings.parquet" in capsys.readouterr().err
