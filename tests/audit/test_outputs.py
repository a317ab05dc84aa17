"""What an audit leaves in its folder: Parquet and CSV rows, run.json, payment estimates, the CLI."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from service.cli import main
from service.config import load_settings
from tests.audit.conftest import rows
from tests.audit.exports import sample_resources, write_ndjson

SYNTHETIC_MPFS = Path(__file__).resolve().parents[2] / "service" / "coding" / "data" / "cms" / "pprrvu-synthetic.csv"
CHARGE = "encounter-close-95990-and-62370-by-rn"
CLEAN = "encounter-close-correct-charges"


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return write_ndjson(sample_resources(CHARGE) + sample_resources(CLEAN), tmp_path / "export")


def test_findings_visits_csv_and_run_json(run_audit, export: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_audit([export], out)
    findings = rows(out / "findings.parquet")
    assert [(f["rule_id"], f["recommended_code"], f["replaces"], f["performer_class"], f["billed_codes"])
            for f in findings] == [("BUN-ANALYSIS-REFILL", "62369", ["95990", "62370"], "staff", ["95990", "62370"])]
    f = findings[0]
    assert f["patient_id"] == "pt-quarrington" and f["encounter_id"] == "enc-quarrington-0316"
    assert str(f["date_of_service"]) == "2026-03-16" and f["rule_version"] and f["severity"] == "critical"
    assert f["est_payment_difference"] is None  # only the synthetic fee schedule is loaded
    visits = {v["encounter_id"]: v for v in rows(out / "visits.parquet")}
    assert visits["enc-quarrington-0316"]["clean"] is False
    assert visits["enc-quarrington-0316"]["billed_service"] == "62370+95990"
    assert visits["enc-quarrington-0316"]["expected_service"] == "62369"
    clean = next(v for k, v in visits.items() if k != "enc-quarrington-0316")
    assert clean["clean"] is True and clean["findings"] == 0
    with (out / "findings.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert table[0]["rule_id"] == "BUN-ANALYSIS-REFILL" and table[0]["replaces"] == "95990; 62370"
    run = json.loads((out / "run.json").read_text())
    assert run["counts"]["pump_visits"] == 2 and run["counts"]["findings"] == 1
    assert run["versions"]["rules"]["BUN-ANALYSIS-REFILL"] == f["rule_version"]
    assert run["versions"]["cms"]["mpfs"]["synthetic"] is True
    assert set(run["timings_s"]) >= {"select", "evaluate", "total"}
    assert not (out / ".work").exists()  # the work copy of patient data is removed


def _real_looking_mpfs(path: Path) -> Path:
    """The synthetic file's layout, not marked synthetic, with RVU totals and a conversion factor."""
    lines = list(csv.reader(SYNTHETIC_MPFS.open(newline="")))
    totals = {"62369": "3.00", "62370": "3.50", "95990": "1.50", "62367": "1.00", "62368": "2.00"}
    out = [["NATIONAL PHYSICIAN FEE SCHEDULE RELATIVE VALUE FILE TEST RELEASE"] + [""] * (len(lines[0]) - 1)]
    for row in lines[1:]:
        if row and row[0] in totals:
            row[11], row[24] = totals[row[0]], "32.3465"
        out.append(row)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(out)
    return path


def test_payment_difference_from_a_real_fee_schedule(export: Path, tmp_path: Path) -> None:
    from service.audit.run import AuditOptions, audit

    settings = load_settings(environ={}, database_url="sqlite://", mpfs_rvu_path=str(_real_looking_mpfs(tmp_path / "PPRRVU26_JAN.csv")))
    audit(AuditOptions([str(export)], tmp_path / "out", workers=1), settings)
    (finding,) = rows(tmp_path / "out" / "findings.parquet")
    # 62369 in place of 95990 + 62370: (3.00 - 1.50 - 3.50) x 32.3465
    assert finding["est_payment_difference"] == pytest.approx(-64.69, abs=0.02)


def test_cli_audit_writes_outputs_and_a_summary(export: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    assert main(["audit", str(export), "--out", str(tmp_path / "out"), "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "2 pump visits" in err and "BUN-ANALYSIS-REFILL" in err
    assert "pt-quarrington" not in err  # counts and rules only, never patient ids
    assert (tmp_path / "out" / "findings.parquet").is_file()
    assert main(["audit", str(export), "--out", str(tmp_path / "q"), "--workers", "1", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_cli_audit_bad_input_says_what(tmp_path: Path, capsys) -> None:
    assert main(["audit", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "input not found" in capsys.readouterr().err
    assert main(["audit", "--out", str(tmp_path / "out")]) == 2
    (tmp_path / "broken.json").write_text("{ not json")
    assert main(["audit", str(tmp_path / "broken.json"), "--out", str(tmp_path / "o2"), "--quiet", "--workers", "1"]) == 0
    run = json.loads((tmp_path / "o2" / "run.json").read_text())
    assert run["counts"]["pump_visits"] == 0 and "not readable" in run["input_problems"][0]


def test_process_pool_gives_the_rows_of_in_process_evaluation(run_audit, tmp_path: Path) -> None:
    from tests.audit.exports import ENCOUNTER_CLOSE

    everything = {(r["resourceType"], r["id"]): r for n in ENCOUNTER_CLOSE for r in sample_resources(n)}
    folder = write_ndjson(everything.values(), tmp_path / "export")
    single = run_audit([folder], tmp_path / "one", workers=1)
    pooled = run_audit([folder], tmp_path / "pool", workers=2, batch_rows=2)  # several batches in flight
    assert rows(tmp_path / "pool" / "visits.parquet") == rows(tmp_path / "one" / "visits.parquet")
    assert rows(tmp_path / "pool" / "findings.parquet") == rows(tmp_path / "one" / "findings.parquet")
    assert pooled.run["workers"] == 2 and pooled.run["peak_rss_mb"]["workers"] > 0
    assert single.run["peak_rss_mb"]["workers"] is None  # evaluated in process
