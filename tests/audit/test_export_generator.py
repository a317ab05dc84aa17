"""python -m bench.export: pump visits across every sample's codes and findings, mixed into
unrelated resources of the same patients; the audit finds exactly the pump visits."""
from __future__ import annotations

from pathlib import Path

from bench.export import generate, main, templates
from tests.audit.conftest import rows


def test_synthetic_export_holds_every_sample_visit_among_noise(run_audit, tmp_path: Path) -> None:
    counts = generate(tmp_path / "export", visits=2 * len(templates()), noise=1200, gz=True)
    assert counts["Observation"] > 600 and counts["MedicationRequest"] > 50 and counts["MedicationAdministration"] > 50
    assert all(p.name.endswith(".ndjson.gz") for p in (tmp_path / "export").iterdir())
    result = run_audit([tmp_path / "export"], tmp_path / "out")
    c = result.run["counts"]
    assert c["pump_visits"] >= 2 * len(templates())
    assert c["visits"] > c["pump_visits"]  # the unrelated encounters and lab days were grouped, not selected
    fired = {f["rule_id"] for f in rows(tmp_path / "out" / "findings.parquet")}
    assert len(fired) >= 18, sorted(fired)  # findings of (nearly) every rule, as the samples have them
    assert any(v["clean"] for v in rows(tmp_path / "out" / "visits.parquet"))


def test_generator_command_line(tmp_path: Path, capsys) -> None:
    assert main(["--visits", "3", "--noise", "30", "--out", str(tmp_path / "e")]) == 0
    assert "resources in" in capsys.readouterr().err
    assert (tmp_path / "e" / "Encounter.ndjson").is_file()
