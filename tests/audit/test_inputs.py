"""What the audit reads: NDJSON plain and gz, Bundles of each type, a mix; how it groups visits."""
from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

from service.audit.inputs import flatten
from tests.audit.conftest import rows
from tests.audit.exports import sample_resources, write_ndjson

CHARGE = "encounter-close-95990-and-62370-by-rn"  # BUN-ANALYSIS-REFILL 62369 for 95990 + 62370
MISSING = "encounter-close-missing-charge"  # SEL-MATRIX recommends 62368


def _rules(out: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in rows(out / "findings.parquet"):
        found.setdefault(f["encounter_id"] or f["visit_id"], set()).add(f"{f['rule_id']}:{f['recommended_code']}")
    return found


def _bundle(resources: list[dict], kind: str) -> dict:
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"fullUrl": f"https://ehr.example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r} for r in resources]}


def test_plain_and_gz_ndjson_give_the_same_findings(run_audit, tmp_path: Path) -> None:
    resources = sample_resources(CHARGE) + sample_resources(MISSING)
    plain = run_audit([write_ndjson(resources, tmp_path / "plain")], tmp_path / "a")
    gz = run_audit([write_ndjson(resources, tmp_path / "gz", gz=True)], tmp_path / "b")
    assert _rules(tmp_path / "a") == _rules(tmp_path / "b")
    assert _rules(tmp_path / "a") == {
        "enc-quarrington-0316": {"BUN-ANALYSIS-REFILL:62369"},
        "enc-stillwater-0318": {"SEL-MATRIX:62368"},
    }
    assert plain.run["counts"]["pump_visits"] == gz.run["counts"]["pump_visits"] == 2


def test_bundles_collection_searchset_and_a_mix_with_ndjson(run_audit, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "collection.json").write_text(json.dumps(_bundle(sample_resources(CHARGE), "collection")))
    with gzip.open(tmp_path / "in" / "searchset.json.gz", "wt") as fh:
        json.dump(_bundle(sample_resources(MISSING), "searchset"), fh)
    result = run_audit([tmp_path / "in"], tmp_path / "out")
    assert _rules(tmp_path / "out") == {
        "enc-quarrington-0316": {"BUN-ANALYSIS-REFILL:62369"},
        "enc-stillwater-0318": {"SEL-MATRIX:62368"},
    }
    assert {f["kind"] for f in result.run["inputs"]} == {"bundle"}
    # the same visits split over a Bundle file and an NDJSON folder
    write_ndjson(sample_resources(MISSING), tmp_path / "nd")
    run_audit([tmp_path / "in" / "collection.json", tmp_path / "nd"], tmp_path / "mixed")
    assert _rules(tmp_path / "mixed") == _rules(tmp_path / "out")


def test_transaction_bundle_links_by_urn_uuid(run_audit, tmp_path: Path) -> None:
    """Ids only in fullUrl (urn:uuid) and references to them: read as the same visit."""
    resources = copy.deepcopy(sample_resources(MISSING))
    urns = {f"{r['resourceType']}/{r['id']}": f"urn:uuid:00000000-0000-4000-8000-{i:012d}" for i, r in enumerate(resources)}

    def relink(node):
        if isinstance(node, dict):
            if isinstance(node.get("reference"), str) and node["reference"] in urns:
                node["reference"] = urns[node["reference"]]
            for v in node.values():
                relink(v)
        elif isinstance(node, list):
            for v in node:
                relink(v)

    entries = []
    for r in resources:
        urn = urns[f"{r['resourceType']}/{r['id']}"]
        relink(r)
        r.pop("id")
        entries.append({"fullUrl": urn, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    flat = flatten(bundle)
    assert all(r.get("id") for r in flat)
    (tmp_path / "tx.json").write_text(json.dumps(bundle))
    run_audit([tmp_path / "tx.json"], tmp_path / "out")
    found = _rules(tmp_path / "out")
    assert list(found.values()) == [{"SEL-MATRIX:62368"}]


def test_visit_without_encounter_is_grouped_by_patient_and_date(run_audit, tmp_path: Path) -> None:
    resources = [r for r in copy.deepcopy(sample_resources(MISSING)) if r["resourceType"] != "Encounter"]
    for r in resources:
        r.pop("encounter", None)
        r.pop("context", None)
    run_audit([write_ndjson(resources, tmp_path / "export")], tmp_path / "out")
    visits = rows(tmp_path / "out" / "visits.parquet")
    assert [(v["visit_id"], v["encounter_id"], str(v["date_of_service"])) for v in visits] == [
        ("P|pt-stillwater|2026-03-18", None, "2026-03-18")]
    assert _rules(tmp_path / "out") == {"P|pt-stillwater|2026-03-18": {"SEL-MATRIX:62368"}}


def test_unrelated_visits_and_bad_lines_are_counted_not_evaluated(run_audit, tmp_path: Path) -> None:
    folder = write_ndjson(sample_resources(MISSING), tmp_path / "export")
    vitals = [
        {"resourceType": "Observation", "id": f"bp-{i}", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
         "subject": {"reference": "Patient/pt-stillwater"}, "encounter": {"reference": f"Encounter/other-{i}"},
         "effectiveDateTime": f"2026-02-0{i + 1}T10:00:00Z"}
        for i in range(3)
    ]
    with (folder / "Observation.ndjson").open("a") as fh:
        fh.write("".join(json.dumps(v) + "\n" for v in vitals) + "{not json\n")
    result = run_audit([folder], tmp_path / "out")
    counts = result.run["counts"]
    assert counts["visits"] == 4 and counts["candidates"] == 1 and counts["pump_visits"] == 1
    assert counts["unreadable_lines"] == 1
    assert len(rows(tmp_path / "out" / "visits.parquet")) == 1


def test_prefilter_drops_no_visit_the_relevance_gate_keeps(run_audit, tmp_path: Path) -> None:
    from tests.audit.exports import ENCOUNTER_CLOSE

    everything = {(r["resourceType"], r["id"]): r for n in ENCOUNTER_CLOSE for r in sample_resources(n)}
    folder = write_ndjson(everything.values(), tmp_path / "export")
    with_filter = run_audit([folder], tmp_path / "a")
    without = run_audit([folder], tmp_path / "b", prefilter=False)
    assert without.run["counts"]["candidates"] >= with_filter.run["counts"]["candidates"]
    assert rows(tmp_path / "a" / "visits.parquet") == rows(tmp_path / "b" / "visits.parquet")


def test_resource_nested_too_deep_is_reported_not_fatal(run_audit, tmp_path: Path) -> None:
    resources = copy.deepcopy(sample_resources(MISSING))
    obs = {"resourceType": "Observation", "id": "deep-vitals", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
           "subject": {"reference": "Patient/pt-stillwater"}, "encounter": {"reference": "Encounter/enc-stillwater-0318"},
           "effectiveDateTime": "2026-03-18T13:25:00-05:00", "valueQuantity": {"value": 70, "unit": "/min"}}
    resources.append(obs)
    node: dict = {"url": "http://example.org/deep", "valueString": "x"}
    for _ in range(150):  # past max_json_depth (100), as the hooks bound it
        node = {"url": "http://example.org/deep", "extension": [node]}
    obs["extension"] = [node]
    run_audit([write_ndjson(resources, tmp_path / "export")], tmp_path / "out")
    assert _rules(tmp_path / "out") == {"enc-stillwater-0318": {"SEL-MATRIX:62368", "DQ-INPUT:None"}}
