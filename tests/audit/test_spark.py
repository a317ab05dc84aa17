"""--engine spark (local mode) gives exactly the DuckDB engine's visits and findings on the same
export: the samples' encounter-close visits plus synthetic visits of every sample among noise."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.export import generate
from tests.audit.conftest import rows
from tests.audit.exports import ENCOUNTER_CLOSE, sample_resources, write_ndjson

pytest.importorskip("pyspark", reason="pyspark not installed: .ci/run installs the 'spark' extra")


def _visits(out: Path) -> list[tuple]:
    return sorted((v["visit_id"], v["encounter_id"], v["patient_id"], v["date_of_service"], v["performer_class"],
                   tuple(v["billed_codes"]), v["expected_service"], tuple(v["rule_ids"]), v["clean"])
                  for v in rows(out / "visits.parquet"))


def _findings(out: Path) -> list[tuple]:
    return sorted((f["visit_id"], f["rule_id"], f["rule_version"], f["kind"], f["severity"], f["recommended_code"],
                   tuple(f["replaces"]), tuple(f["modifiers"]), f["units"], tuple(f["missing_elements"]))
                  for f in rows(out / "findings.parquet"))


def test_spark_and_duckdb_give_identical_findings(run_audit, tmp_path: Path) -> None:
    everything = {(r["resourceType"], r["id"]): r for n in ENCOUNTER_CLOSE for r in sample_resources(n)}
    write_ndjson(everything.values(), tmp_path / "export" / "samples", gz=True)
    generate(tmp_path / "export" / "synthetic", visits=60, noise=1500)
    duck = run_audit([tmp_path / "export"], tmp_path / "duck")
    spark = run_audit([tmp_path / "export"], tmp_path / "spark", engine="spark")
    assert duck.run["counts"]["pump_visits"] >= 60
    for key in ("resources", "unreadable_lines", "visits", "candidates", "pump_visits", "findings"):
        assert spark.run["counts"][key] == duck.run["counts"][key], key
    assert _visits(tmp_path / "spark") == _visits(tmp_path / "duck")
    assert _findings(tmp_path / "spark") == _findings(tmp_path / "duck")
    assert spark.run["engine"] == "spark" and (tmp_path / "spark" / "report.html").is_file()
