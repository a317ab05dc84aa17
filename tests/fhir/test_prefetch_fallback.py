"""Prefetch fill-in from a real FHIR server on loopback: success, paging, and every failure mode."""
from __future__ import annotations

import uuid

import pytest

from service.cdshooks.invoke import invoke
from service.cdshooks.services import ENCOUNTER_DISCHARGE_SERVICE_ID, ORDER_SIGN_SERVICE_ID
from service.devtools.fhir_server import Fault, FhirTestServer
from service.fhir.client import Budget, FhirClient, FhirFetchError

TOKEN = "fhir-access-token-7f3a"


def device(pid="pat-1"):
    return {"resourceType": "Device", "id": "pump-1", "status": "active", "patient": {"reference": f"Patient/{pid}"},
            "manufacturer": "Medtronic", "deviceName": [{"name": "SynchroMed II", "type": "model-name"}]}


def procedure(i, pid="pat-1", enc="enc-1"):
    return {"resourceType": "Procedure", "id": f"proc-{i}", "status": "completed",
            "subject": {"reference": f"Patient/{pid}"}, "encounter": {"reference": f"Encounter/{enc}"},
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62367"}]},
            "performedDateTime": "2026-11-20T10:00:00-05:00",
            "performer": [{"actor": {"reference": "Practitioner/prac-9"}}]}


def encounter():
    return {"resourceType": "Encounter", "id": "enc-1", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": "Patient/pat-1"}}


def practitioner(pid="prac-9"):
    return {"resourceType": "Practitioner", "id": pid, "qualification": [{"code": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0360", "code": "MD"}]}}]}


@pytest.fixture
def fhir(live_server_factory):
    store = FhirTestServer(page_size=2)
    store.add([device(), encounter(), practitioner()] + [procedure(i) for i in range(5)])
    server = live_server_factory(store.wsgi())
    store.base = f"{server.url}/fhir"  # type: ignore[attr-defined]
    return store


PUMP_ORDER = {"resource": {"resourceType": "ServiceRequest", "id": "pump-order", "status": "draft", "intent": "order",
                  "subject": {"reference": "Patient/pat-1"}, "authoredOn": "2026-11-20",
                  "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62367"}]}}}


def request_body(fhir_base, prefetch=None, hook="order-sign"):
    body = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": fhir_base,
        "fhirAuthorization": {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 300,
                              "scope": "patient/*.read", "subject": "pumpcds"},
        "context": {"userId": "Practitioner/prac-1", "patientId": "pat-1"},
    }
    if hook == "order-sign":
        # a pump order is being signed, so the relevance gate lets the call through (issue 11)
        body["context"]["draftOrders"] = {"resourceType": "Bundle", "entry": [PUMP_ORDER]}
    else:
        body["context"]["encounterId"] = "enc-1"
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def gathered(app, body, service_id=ORDER_SIGN_SERVICE_ID):
    """Run the real pipeline and capture what reached the engine."""
    runtime = app.extensions["pumpcds"]
    seen = {}
    original = runtime.engine.assess

    def spy(resources):
        seen["resources"] = resources
        return original(resources)

    runtime.engine.assess = spy
    try:
        result = invoke(runtime, service_id, body)
    finally:
        runtime.engine.assess = original
    return result, seen.get("resources")


def test_missing_prefetch_is_fetched_with_bearer_token(app, fhir):
    result, resources = gathered(app, request_body(fhir.base))
    assert result.status == 200, result.body
    assert {r["id"] for r in resources.of_type("Procedure")} == {f"proc-{i}" for i in range(5)}  # 3 pages of 2
    assert [d["id"] for d in resources.of_type("Device")] == ["pump-1"]
    assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in fhir.requests)
    assert any(r.path == "/fhir/Procedure" and r.query.get("_offset") == "4" for r in fhir.requests)
    # the performer the Procedures point at is fetched by reference
    assert [p["id"] for p in resources.of_type("Practitioner")] == ["prac-9"]


def test_sent_prefetch_is_used_without_calling_the_server(app, fhir):
    prefetch = {"device": device(), "procedures": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": procedure(1)}]},
                "observations": None, "medicationAdministrations": None, "coverage": None,
                "practitioner": practitioner("prac-1"), "practitionerRoles": None}
    result, resources = gathered(app, request_body(fhir.base, prefetch))
    assert result.status == 200
    assert [p["id"] for p in resources.of_type("Procedure")] == ["proc-1"]
    assert not [r for r in fhir.requests if r.path in ("/fhir/Device", "/fhir/Procedure")]


def test_operation_outcome_in_prefetch_triggers_own_fetch(app, fhir):
    oo = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    result, resources = gathered(app, request_body(fhir.base, {"device": oo, "procedures": None}))
    assert result.status == 200
    assert [d["id"] for d in resources.of_type("Device")] == ["pump-1"]
    assert any(r.path == "/fhir/Device" for r in fhir.requests)


def test_prefetched_first_page_is_followed_through_next_links(app, fhir):
    first = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": procedure(0)}, {"resource": procedure(1)}],
             "link": [{"relation": "next", "url": f"{fhir.base}/Procedure?patient=pat-1&_offset=2&_count=2"}]}
    result, resources = gathered(app, request_body(fhir.base, {"device": device(), "procedures": first}))
    assert result.status == 200
    assert len(resources.of_type("Procedure")) == 5


def test_page_cap_stops_following_and_says_so(settings, fhir):
    from service.app import create_app

    app = create_app(settings.with_overrides(fhir_max_bundle_pages=2))
    result, resources = gathered(app, request_body(fhir.base, {"device": device()}))
    assert result.status == 200
    assert len(resources.of_type("Procedure")) == 4
    assert any("procedures" in u and "cap" in u for u in resources.unavailable)


def test_server_500_on_required_data_is_412(app, fhir):
    fhir.faults["Device"] = Fault(status=500)
    result, _ = gathered(app, request_body(fhir.base))
    assert result.status == 412
    text = " ".join(i["diagnostics"] for i in result.body["issue"])
    assert "device: FHIR server answered HTTP 500" in text


PUMP_CHARGE = {"resourceType": "ChargeItem", "id": "c1", "status": "billable", "subject": {"reference": "Patient/pat-1"},
               "context": {"reference": "Encounter/enc-1"},
               "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62367"}]}}


def test_server_404_on_required_read_is_412(app, fhir):
    # a pump charge is on the encounter, so the visit is plausibly a pump visit (issue 11)
    body = request_body(fhir.base.replace("/fhir", "/nothing-here"),
                        {"chargeItems": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": PUMP_CHARGE}]}},
                        hook="encounter-discharge")
    result, _ = gathered(app, body, ENCOUNTER_DISCHARGE_SERVICE_ID)
    assert result.status == 412
    assert "HTTP 404" in " ".join(i["diagnostics"] for i in result.body["issue"])


def test_invalid_json_from_server_is_412(app, fhir):
    fhir.faults["Procedure"] = Fault(body=b"{not json")
    result, _ = gathered(app, request_body(fhir.base, {"device": device()}))
    assert result.status == 412
    assert "not JSON" in " ".join(i["diagnostics"] for i in result.body["issue"])


def test_non_fhir_json_from_server_is_412(app, fhir):
    fhir.faults["Procedure"] = Fault(body=b'{"hello": "world"}')
    result, _ = gathered(app, request_body(fhir.base, {"device": device()}))
    assert result.status == 412
    assert "not a FHIR resource" in " ".join(i["diagnostics"] for i in result.body["issue"])


def test_slow_server_hits_the_time_budget_and_does_not_hang(settings, fhir):
    from service.app import create_app

    app = create_app(settings.with_overrides(fhir_time_budget_ms=200))
    fhir.faults["Procedure"] = Fault(delay_s=2.0)
    result, _ = gathered(app, request_body(fhir.base, {"device": device()}))
    assert result.status == 412
    assert "time budget" in " ".join(i["diagnostics"] for i in result.body["issue"])


def test_optional_data_failure_degrades_honestly(app, fhir):
    fhir.faults["Observation"] = Fault(status=503)
    result, resources = gathered(app, request_body(fhir.base, {"device": device(), "procedures": None}))
    assert result.status == 200
    assert any(u.startswith("observations: FHIR server answered HTTP 503") for u in resources.unavailable)


def test_redirects_are_not_followed(app, fhir):
    fhir.faults["Device"] = Fault(redirect_to="http://127.0.0.1:9/elsewhere")
    result, _ = gathered(app, request_body(fhir.base, {"procedures": None}))
    assert result.status == 412
    assert "HTTP 302" in " ".join(i["diagnostics"] for i in result.body["issue"])


def test_unreachable_server_is_412(app):
    result, _ = gathered(app, request_body("http://127.0.0.1:9/fhir"))
    assert result.status == 412
    assert "unreachable" in " ".join(i["diagnostics"] for i in result.body["issue"])


def test_server_off_allow_list_is_never_contacted(settings, fhir):
    from service.app import create_app

    app = create_app(settings.with_overrides(fhir_server_allowlist=("https://ehr.example.org/fhir",)))
    result, _ = gathered(app, request_body(fhir.base))
    assert result.status == 412
    assert "allow-list" in " ".join(i["diagnostics"] for i in result.body["issue"])
    assert fhir.requests == []


def test_encounter_close_fetches_by_encounter(app, fhir):
    result, resources = gathered(app, request_body(fhir.base, hook="encounter-discharge"), ENCOUNTER_DISCHARGE_SERVICE_ID)
    assert result.status == 200, result.body
    assert [e["id"] for e in resources.of_type("Encounter")] == ["enc-1"]
    assert any(r.path == "/fhir/Procedure" and r.query.get("encounter") == "enc-1" for r in fhir.requests)


def test_client_links_off_server_are_not_followed(fhir):
    import requests

    client = FhirClient(fhir.base, TOKEN, Budget(1.0), requests.Session())
    page = {"resourceType": "Bundle", "type": "searchset", "entry": [],
            "link": [{"relation": "next", "url": "http://127.0.0.1:9/other/Procedure?page=2"}]}
    with pytest.raises(FhirFetchError, match="outside"):
        client.follow_pages(page, already_fetched=1)
