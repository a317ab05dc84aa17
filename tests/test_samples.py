"""Every sample request in fhir_samples/requests/ gives the findings written beside it in
fhir_samples/expected/, through the same code path as the HTTP endpoint; and over real HTTP each
sample is answered 200 with cards of exactly the rules the engine fired.

Samples whose prefetch is left out (`fhir_server_dir` in the expected file) are served by a real
FHIR server on loopback that holds the files of that directory. Samples that need a deployment
setting (`settings` in the expected file, e.g. a site mapping; paths relative to the repository
root) run on an app built with those settings, and a site-mapped sample must lose its findings
without the mapping. An expected file marked `known_engine_gap` states what the rules call for
while the engine still disagrees: its findings test is a strict xfail.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from service.app import create_app
from service.cdshooks.validation import check_request
from service.coding.engine import Assessment
from service.config import load_settings
from service.devtools.fhir_server import FhirTestServer
from service.fhir.client import Budget
from service.fhir.prefetch import PrefetchResolver
from service.runtime import Runtime
from tests.conftest import install_response_check

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


@pytest.fixture
def app_for(app, tmp_path):
    """The shared app, or one built with the sample's `settings` (paths resolved from the repo root)."""
    built: list[list[str]] = []

    def make(expected: dict[str, Any]) -> Any:
        settings = expected.get("settings")
        if not settings:
            return app
        values = {k: str(ROOT / v) if k.endswith("_path") and v else v for k, v in settings.items()}
        flask_app = create_app(load_settings(environ={}, database_url=f"sqlite:///{tmp_path / 'sample.db'}", **values))
        built.append(install_response_check(flask_app))
        return flask_app

    yield make
    problems = [p for found in built for p in found]
    assert problems == [], "non-conformant CDS Hooks responses: " + "; ".join(problems[:5])


def _matching(got: list[Any], want: dict[str, Any]) -> list[Any]:
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
    return matches


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
def test_sample_gives_its_expected_findings(request, app_for, fhir_for, name: str) -> None:
    expected = _expected(name)
    if expected.get("known_engine_gap"):
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"known engine gap: {expected['known_engine_gap']}"))
    runtime: Runtime = app_for(expected).extensions["pumpcds"]
    assessment = _assess(runtime, expected["service"], _request(name, fhir_for(expected)))
    got = assessment.findings
    for want in expected.get("findings", []):
        assert _matching(got, want), f"{name}: expected {want}, engine found {_describe(got)}"
    fired = {f.rule.id for f in got}
    unwanted = fired & set(expected.get("absent_rules", []))
    assert not unwanted, f"{name}: rules that must not fire did: {sorted(unwanted)}; found {_describe(got)}"
    for f in got:  # every finding can be checked by a coder
        assert f.rule.source and f.rule.version


MAPPED = [n for n in NAMES if (_expected(n).get("settings") or {}).get("site_mapping_path")]


@pytest.mark.parametrize("name", MAPPED)
def test_site_mapped_sample_needs_its_mapping(app, fhir_for, name: str) -> None:
    """Without the site mapping the local codes mean nothing, so the mapped findings are not found."""
    expected = _expected(name)
    assert expected.get("findings"), f"{name}: a mapped sample needs findings to prove the mapping matters"
    got = _assess(app.extensions["pumpcds"], expected["service"], _request(name, fhir_for(expected))).findings
    for want in expected["findings"]:
        assert not _matching(got, want), f"{name}: {want} found without the site mapping; found {_describe(got)}"


@pytest.mark.parametrize("name", NAMES)
def test_sample_over_http(app_for, live_server_factory, fhir_for, name: str) -> None:
    expected = _expected(name)
    app = app_for(expected)
    live_server = live_server_factory(app)
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
