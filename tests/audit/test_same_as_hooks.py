"""A visit gets the same findings in the audit as at encounter close: every encounter-close sample,
answered by the hook's path (prefetch or FHIR server -> engine), against one audit of an export
holding all those samples' resources together (so grouping has to keep them apart)."""
from __future__ import annotations

import json
from typing import Any

import pytest

from service.cdshooks.services import service_for_hook
from service.cdshooks.validation import check_request
from service.devtools.fhir_server import FhirTestServer
from service.fhir.client import Budget
from service.fhir.prefetch import PrefetchResolver
from service.runtime import Runtime
from tests.audit.conftest import rows
from tests.audit.exports import ENCOUNTER_CLOSE, SAMPLES, sample_resources, write_ndjson


def _key(f: Any) -> tuple:
    return (f["rule_id"], f["rule_version"], f["kind"], f["severity"], f["recommended_code"],
            tuple(sorted(f["replaces"])), tuple(f["modifiers"]), f["units"], tuple(f["missing_elements"]))


def _hook_findings(runtime: Runtime, name: str, fhir_base: str | None) -> tuple[str, list[tuple]]:
    body = json.loads((SAMPLES / "requests" / f"{name}.json").read_text())
    if fhir_base:
        body["fhirServer"] = fhir_base
    request = check_request(service_for_hook(runtime.services, body["hook"]), body)
    client = runtime.client_for(request, Budget(5.0))
    resources = PrefetchResolver(runtime.settings.max_prefetch_resources).gather(request, client, "no fhirServer")
    findings = runtime.engine.assess(resources).findings
    keyed = [(f.rule.id, f.rule.version, f.kind.value, f.severity.value, f.code, tuple(sorted(f.replaces)),
              tuple(f.modifiers), f.units, tuple(f.missing)) for f in findings]
    return body["context"]["encounterId"], sorted(keyed, key=repr)


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> dict[str, list[tuple]]:
    from service.audit.run import AuditOptions, audit
    from service.config import load_settings

    base = tmp_path_factory.mktemp("same-as-hooks")
    everything: dict[tuple, dict] = {}
    for name in ENCOUNTER_CLOSE:
        for r in sample_resources(name):
            everything[(r["resourceType"], r.get("id"))] = r
    write_ndjson(everything.values(), base / "export")
    settings = load_settings(environ={}, database_url=f"sqlite:///{base / 'unused.db'}")
    audit(AuditOptions([str(base / "export")], base / "out", workers=1), settings)
    by_encounter: dict[str, list[tuple]] = {}
    for f in rows(base / "out" / "findings.parquet"):
        by_encounter.setdefault(f["encounter_id"], []).append(_key(f))
    for v in rows(base / "out" / "visits.parquet"):
        by_encounter.setdefault(v["encounter_id"], [])
    return {k: sorted(v, key=repr) for k, v in by_encounter.items()}


def test_every_encounter_close_sample_is_covered() -> None:
    assert len(ENCOUNTER_CLOSE) >= 7


@pytest.mark.parametrize("name", ENCOUNTER_CLOSE)
def test_audit_finds_what_the_hook_finds(name: str, audited, settings, live_server_factory) -> None:
    expected = json.loads((SAMPLES / "expected" / f"{name}.json").read_text())
    fhir_base = None
    if expected.get("fhir_server_dir"):
        server = FhirTestServer().load_dir(SAMPLES / expected["fhir_server_dir"])
        fhir_base = f"{live_server_factory(server.wsgi()).url}/fhir"
    runtime = Runtime.build(settings, with_store=False)
    encounter, hook = _hook_findings(runtime, name, fhir_base)
    assert encounter in audited, f"{name}: the audit did not select encounter {encounter} as a pump visit"
    assert audited[encounter] == hook
    for want in expected.get("findings", []):  # and both agree with the sample's expectation
        assert any(k[0] == want["rule"] and k[2] == want["kind"] for k in hook)
