"""Every sample request in fhir_samples/requests/ gives the findings written beside it in
fhir_samples/expected/, through the same code path as the HTTP endpoint; and over real HTTP each
sample is answered 200 with cards of exactly the rules the engine fired.

Samples whose prefetch is left out (`fhir_server_dir` in the expected file) are served by a real
FHIR server on loopback that holds the files of that directory.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from service.cdshooks.validation import check_request
from service.coding.engine import Assessment
from service.devtools.fhir_server import FhirTestServer
from service.fhir.client import Budget
from service.fhir.prefetch import PrefetchResolver
from service.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "fhir_samples"
NAMES = sorted(p.stem for p in (SAMPLES / "requests").glob("*.json"))


def _expected(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / "expected" / f"{name}.json").read_text())


def _request(name: str, fhir_base: str | None) -> dict[str, Any]:
    body = json.loads((SAMPLES / "requests" / f"{name}.json").read_text())
    if fhir_base:
        body = copy.deepcopy(body)
        body["fhirServer"] = fhir_base
    return body


@pytest.fixture
def fhir_for(live_server_factory):
    def start(expected: dict[str, Any]) -> str | None:
        directory = expected.get("fhir_server_dir")
        if not directory:
            return None
        server = FhirTestServer().load_dir(SAMPLES / directory)
        return f"{live_server_factory(server.wsgi()).url}/fhir"  # FhirTestServer serves at /fhir

    return start


def _assess(runtime: Runtime, service_id: str, body: dict[str, Any]) -> Assessment:
    request = check_request(runtime.services[service_id], body)
    client = runtime.client_for(request, Budget(5.0))  # generous: loopback, and no timing in tests
    resources = PrefetchResolver(runtime.settings.max_prefetch_resources).gather(request, client, "no fhirServer")
    return runtime.engine.assess(resources)


def _describe(findings: list[Any]) -> list[str]:
    return [f"{f.rule.id}:{f.kind.value}:{f.code}:{','.join(f.replaces)}:{','.join(f.missing)}" for f in findings]


def test_there_are_enough_samples() -> None:
    assert len(NAMES) >= 25
    assert "order-sign-62369-staff-refill" in NAMES
    missing = [n for n in NAMES if not (SAMPLES / "expected" / f"{n}.json").exists()]
    assert missing == []


@pytest.mark.parametrize("name", NAMES)
def test_sample_gives_its_expected_findings(app, fhir_for, name: str) -> None:
    expected = _expected(name)
    runtime: Runtime = app.extensions["pumpcds"]
    assessment = _assess(runtime, expected["service"], _request(name, fhir_for(expected)))
    got = assessment.findings
    for want in expected.get("findings", []):
        matches = [f for f in got if f.rule.id == want["rule"] and f.kind.value == want["kind"]]
        if "code" in want:
            matches = [f for f in matches if f.code == want["code"]]
        if "replaces" in want:
            matches = [f for f in matches if set(f.replaces) == set(want["replaces"])]
        if "modifiers" in want:
            matches = [f for f in matches if set(want["modifiers"]) <= set(f.modifiers)]
        if "units" in want:
            matches = [f for f in matches if f.units == want["units"]]
        if "missing_includes" in want:
            matches = [f for f in matches if set(want["missing_includes"]) <= set(f.missing)]
        assert matches, f"{name}: expected {want}, engine found {_describe(got)}"
    fired = {f.rule.id for f in got}
    unwanted = fired & set(expected.get("absent_rules", []))
    assert not unwanted, f"{name}: rules that must not fire did: {sorted(unwanted)}; found {_describe(got)}"
    for f in got:  # every finding can be checked by a coder
        assert f.rule.source and f.rule.version


@pytest.mark.parametrize("name", NAMES)
def test_sample_over_http(app, live_server, fhir_for, name: str) -> None:
    expected = _expected(name)
    body = _request(name, fhir_for(expected))
    resp = requests.post(f"{live_server.url}/cds-services/{expected['service']}", json=body, timeout=30)
    assert resp.status_code == expected.get("status", 200), resp.text
    cards = resp.json()["cards"]
    runtime: Runtime = app.extensions["pumpcds"]
    findings = _assess(runtime, expected["service"], _request(name, fhir_for(expected))).findings
    assert len(cards) <= len(findings)
    if not findings:
        assert cards == []
    card_rules = [c.get("extension", {}).get("pumpcds", {}).get("ruleId") for c in cards]
    if all(card_rules):
        assert set(card_rules) == {f.rule.id for f in findings}
