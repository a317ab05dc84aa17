"""Real client traffic (issue 11): public requests and HL7 example resources, through the real app
over HTTP. None is about an implanted drug pump, so each gets 200 {"cards": []}, never a 412 or a
5xx, and, when what was sent can be judged, no call to the FHIR server.

The fixtures are committed copies in fhir_samples/real_clients/ (sources and licences in its
README); nothing is fetched from the network.
"""
from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from service.devtools.fhir_server import Fault, FhirTestServer

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "fhir_samples" / "real_clients"
ORDER_SIGN = "/cds-services/pump-visit-coding-order-sign"
ENCOUNTER_CLOSE = "/cds-services/pump-visit-coding-encounter-discharge"
SCT = "http://snomed.info/sct"

# public hook requests, as published (file -> whether it carries anything to judge)
PUBLIC_REQUESTS = {
    "cds-hooks-spec-order-sign.json": True,
    "cds-hooks-docs-encounter-discharge.json": False,
    "inferno-crd-order-sign-hook-request.json": True,
    "inferno-crd-encounter-discharge-hook-request.json": False,
    "inferno-crd-order-sign-complete-prefetch.json": True,
    "inferno-crd-encounter-discharge-complete-prefetch.json": False,
    "davinci-crd-ig-CRDServiceRequest.json": True,
    "davinci-crd-ig-CRDServiceRequest3.json": True,
}


def load(name: str) -> dict[str, Any]:
    return json.loads((REAL / name).read_text())


def bundle(*resources: dict[str, Any], kind: str | None = "searchset") -> dict[str, Any]:
    b: dict[str, Any] = {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}
    if kind:
        b["type"] = kind
    return b


@pytest.fixture
def fhir(live_server_factory):
    """A real loopback FHIR server with no data for these patients; records every call."""
    store = FhirTestServer()
    store.base = f"{live_server_factory(store.wsgi()).url}/fhir"  # type: ignore[attr-defined]
    return store


@pytest.fixture
def post(live_server):
    def send(path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(f"{live_server.url}{path}", json=body, timeout=30)

    return send


def service_path(body: dict[str, Any]) -> str:
    return ORDER_SIGN if body["hook"] == "order-sign" else ENCOUNTER_CLOSE


@pytest.mark.parametrize("name", sorted(PUBLIC_REQUESTS))
def test_public_request_gets_no_card(post, fhir, name: str) -> None:
    body = load(name)
    assert body["hook"] in ("order-sign", "encounter-discharge")
    if "fhirServer" in body:
        body["fhirServer"] = fhir.base  # the EHR's FHIR server, on loopback
    resp = post(service_path(body), body)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"cards": []}
    if PUBLIC_REQUESTS[name]:
        assert fhir.requests == [], "judged on what was sent: the FHIR server must not be called"


def test_every_public_fixture_is_listed() -> None:
    requests_on_disk = {p.name for p in REAL.glob("*.json") if "hook" in json.loads(p.read_text())}
    assert requests_on_disk == set(PUBLIC_REQUESTS)
    readme = (REAL / "README.md").read_text()
    assert all(p.name in readme for p in REAL.glob("*.json")), "every fixture has its source and licence noted"


# -- HL7 R4 example administrations (an IV push through an infusion pump, TPN through a PICC line)

def pump_on_record() -> dict[str, Any]:
    return {"resourceType": "Device", "id": "itp", "status": "active", "patient": {"reference": "Patient/pat1"},
            "manufacturer": "Medtronic", "deviceName": [{"name": "SynchroMed II", "type": "model-name"}]}


def infusion_devices() -> list[dict[str, Any]]:
    """Device/f001 as the administrations name it: an external infusion pump; and an insulin pump."""
    return [
        {"resourceType": "Device", "id": "f001", "status": "active", "patient": {"reference": "Patient/pat1"},
         "deviceName": [{"name": "Volumetric infusion pump", "type": "user-friendly-name"}]},
        {"resourceType": "Device", "id": "insulin-pump", "status": "active", "patient": {"reference": "Patient/pat1"},
         "deviceName": [{"name": "Insulin pump", "type": "user-friendly-name"}]},
    ]


def insulin_by_pump() -> dict[str, Any]:
    return {"resourceType": "MedicationAdministration", "id": "insulin-basal", "status": "completed",
            "medicationCodeableConcept": {"text": "insulin lispro 100 units/mL"},
            "subject": {"reference": "Patient/pat1"}, "context": {"reference": "Encounter/f001"},
            "effectivePeriod": {"start": "2015-01-15T08:00:00+01:00", "end": "2015-01-15T20:00:00+01:00"},
            "device": [{"reference": "Device/insulin-pump"}],
            "dosage": {"route": {"coding": [{"system": SCT, "code": "34206005", "display": "Subcutaneous route"}]},
                       "dose": {"value": 12, "unit": "U", "system": "http://unitsofmeasure.org", "code": "U"}}}


def administrations() -> dict[str, Any]:
    return bundle(load("hl7-r4-medadmin0307.json"), load("hl7-r4-medadmin0309.json"), insulin_by_pump())


def discharge(prefetch: dict[str, Any]) -> dict[str, Any]:
    return {"hook": "encounter-discharge", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/f007", "patientId": "pat1", "encounterId": "f001"},
            "prefetch": prefetch}


ENCOUNTER_F001 = {"resourceType": "Encounter", "id": "f001", "status": "finished",
                  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                  "subject": {"reference": "Patient/pat1"},
                  "period": {"start": "2015-01-15T00:00:00+01:00", "end": "2015-01-16T10:00:00+01:00"}}


def test_infusion_picc_and_insulin_pump_administrations_at_discharge_no_card(post, fhir) -> None:
    body = discharge({"encounter": ENCOUNTER_F001, "procedures": bundle(), "chargeItems": None,
                      "medicationAdministrations": administrations(), "device": bundle(*infusion_devices())})
    body["fhirServer"] = fhir.base
    resp = post(ENCOUNTER_CLOSE, body)
    assert resp.status_code == 200 and resp.json() == {"cards": []}
    assert fhir.requests == []


def test_a_pump_patient_given_iv_drugs_by_other_pumps_is_not_a_refill(post, app) -> None:
    """The patient has an implanted intrathecal pump, so the gate lets the discharge through; the
    IV push, the TPN and the insulin still are no pump refill: no 95990, no checklist."""
    body = discharge({"encounter": ENCOUNTER_F001, "procedures": bundle(), "chargeItems": None,
                      "medicationAdministrations": administrations(),
                      "device": bundle(pump_on_record(), *infusion_devices()),
                      "observations": None, "coverage": None, "practitioner": None, "practitionerRoles": None})
    resp = post(ENCOUNTER_CLOSE, body)
    assert resp.status_code == 200 and resp.json() == {"cards": []}
    order = {"hook": "order-sign", "hookInstance": str(uuid.uuid4()),
             "context": {"userId": "Practitioner/f007", "patientId": "pat1", "draftOrders": bundle(
                 {"resourceType": "MedicationRequest", "id": "next-dose", "status": "draft", "intent": "order",
                  "subject": {"reference": "Patient/pat1"}, "authoredOn": "2015-01-15",
                  "medicationCodeableConcept": {"text": "lorazepam 2 mg/mL injection"}}, kind="collection")},
             "prefetch": {k: v for k, v in body["prefetch"].items() if k not in ("encounter", "chargeItems")}}
    resp = post(ORDER_SIGN, order)
    assert resp.status_code == 200 and resp.json() == {"cards": []}


# -- unrelated orders as real clients send them --------------------------------------------------

def sandbox_style_order() -> dict[str, Any]:
    """Shaped as the public CDS Hooks sandbox sends its order (Bundle without type, no intent) plus the
    single objects real clients send where R4 wants lists (category, dosageInstruction, doseAndRate)."""
    return {"resourceType": "Bundle", "entry": [{"resource": {
        "resourceType": "MedicationRequest", "id": "request-123", "status": "draft",
        "subject": {"reference": "Patient/smart-1288992"},
        "category": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                                 "code": "outpatient"}]},
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                  "code": "314076", "display": "lisinopril 10 MG Oral Tablet"}]},
        "dosageInstruction": {"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                              "doseAndRate": {"doseQuantity": {"value": 1, "unit": "tablet"}}},
    }}]}


def order_sign(prefetch: dict[str, Any] | None, fhir_base: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"hook": "order-sign", "hookInstance": str(uuid.uuid4()),
                            "context": {"userId": "Practitioner/COREPRACTITIONER1", "patientId": "smart-1288992",
                                        "draftOrders": sandbox_style_order()}}
    if prefetch is not None:
        body["prefetch"] = prefetch
    if fhir_base:
        body.update(fhirServer=fhir_base, fhirAuthorization={
            "access_token": "t0k3n", "token_type": "Bearer", "expires_in": 300, "scope": "user/*.read", "subject": "pumpcds"})
    return body


OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout", "diagnostics": "search timed out"}]}


@pytest.mark.parametrize("prefetch", [
    None,  # no prefetch at all
    {},  # every key left out
    {"device": None, "procedures": None},  # keys filled with nulls, optional keys missing
    {"device": OUTCOME, "procedures": OUTCOME, "observations": OUTCOME},  # the client's fetches failed
    {"device": bundle(), "procedures": bundle(), "coverage": OUTCOME, "observations": None},
], ids=["no-prefetch", "empty-prefetch", "nulls", "operation-outcomes", "mixed"])
def test_unrelated_sloppy_order_no_card_no_fetch(post, fhir, prefetch) -> None:
    resp = post(ORDER_SIGN, order_sign(copy.deepcopy(prefetch), fhir.base))
    assert resp.status_code == 200 and resp.json() == {"cards": []}
    assert fhir.requests == []


def test_discharge_with_optional_keys_missing_or_failed_no_card(post, fhir) -> None:
    body = discharge({"encounter": ENCOUNTER_F001, "procedures": bundle(), "chargeItems": OUTCOME})
    body.update(fhirServer=fhir.base)
    resp = post(ENCOUNTER_CLOSE, body)
    assert resp.status_code == 200 and resp.json() == {"cards": []}
    assert fhir.requests == []


def test_audit_says_the_gate_answered(app) -> None:
    from service.cdshooks.invoke import invoke

    result = invoke(app.extensions["pumpcds"], "pump-visit-coding-order-sign", order_sign({}))
    assert (result.status, result.gate, result.fhir_calls) == (200, "none", 0)
    assert result.audit_record()["gate"] == "none"


# -- shapes real clients send, on a pump order: repaired, listed in the audit, not on a card -------

def test_single_objects_where_r4_wants_lists_are_repaired_and_audited(app) -> None:
    from service.cdshooks.invoke import invoke

    refill = {"resourceType": "MedicationRequest", "id": "itb-refill", "status": "draft",  # no intent, as the sandbox
              "subject": {"reference": "Patient/pt"}, "authoredOn": "2026-11-20",
              "category": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                                       "code": "outpatient"}]},
              "medicationCodeableConcept": {"text": "Gablofen 2000 mcg/mL intrathecal"},
              "dosageInstruction": {"route": {"coding": [{"system": SCT, "code": "72607000"}]},
                                    "doseAndRate": {"doseQuantity": {"value": 20, "unit": "mL", "code": "mL"}}}}
    body = {"hook": "order-sign", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/md", "patientId": "pt", "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": refill}]}},
            "prefetch": {"device": bundle(pump_on_record() | {"patient": {"reference": "Patient/pt"}}), "procedures": bundle(),
                         "observations": None, "medicationAdministrations": None, "coverage": None,
                         "practitioner": None, "practitionerRoles": None}}
    result = invoke(app.extensions["pumpcds"], "pump-visit-coding-order-sign", body)
    assert result.status == 200 and result.gate == "pump"
    rules = {c["extension"]["pumpcds"]["ruleId"] for c in result.body["cards"]}
    assert "DQ-INPUT" not in rules  # the order was read, nothing to report to a clinician
    assert any("single object read as a list" in r and "dosageInstruction" in r for r in result.repairs)
    assert result.audit_record()["repairs"] == result.repairs


@pytest.mark.parametrize("auth, field, words", [
    (None, "fhirAuthorization", "is null"),
    ({"access_token": "t", "token_type": "Bearer", "expires_in": 300, "scope": "", "subject": "s"},
     "fhirAuthorization.scope", "is empty"),
])
def test_null_authorization_or_empty_scope_is_400_naming_the_field(client, auth, field, words) -> None:
    body = order_sign({}, "http://127.0.0.1:9/fhir")
    body["fhirAuthorization"] = auth
    resp = client.post(ORDER_SIGN, json=body)
    assert resp.status_code == 400
    issue = resp.get_json()["issue"][0]
    assert issue["expression"] == [field] and words in issue["diagnostics"] and field in issue["diagnostics"]


def test_unmapped_local_codes_name_the_undecided_fact_and_ask_for_the_mapping(client) -> None:
    """The site-mapped sample on a deployment without the mapping: not a confident wrong code, but
    the candidates, the fact that decides, and one data card asking for the site mapping."""
    body = json.loads((ROOT / "fhir_samples" / "requests" / "order-sign-site-mapped-local-codes.json").read_text())
    cards = client.post(ORDER_SIGN, json=body).get_json()["cards"]
    rules = [c["extension"]["pumpcds"]["ruleId"] for c in cards]
    assert "SEL-UNDECIDED" in rules and "DOC-CHECKLIST" not in rules
    undecided = next(c for c in cards if c["extension"]["pumpcds"]["ruleId"] == "SEL-UNDECIDED")
    assert "reprogrammed" in undecided["summary"]
    data = [c for c in cards if c["extension"]["pumpcds"]["ruleId"] == "DQ-INPUT"]
    assert len(data) == 1 and "site mapping" in data[0]["detail"]
    assert "hospital.example.org" not in data[0]["detail"] and "prefetch" not in data[0]["detail"]


def test_a_pump_patients_unrelated_order_gets_no_data_card(post) -> None:
    """The implanted pump on record lets the order through the gate, but nothing about a pump visit
    is being signed: a coverage search that failed is no reason for a card."""
    body = order_sign({"device": bundle(pump_on_record() | {"patient": {"reference": "Patient/smart-1288992"}}),
                       "procedures": bundle(), "coverage": OUTCOME, "observations": None,
                       "medicationAdministrations": None, "practitioner": None, "practitionerRoles": None})
    resp = post(ORDER_SIGN, body)
    assert resp.status_code == 200 and resp.json() == {"cards": []}


def test_discharge_judged_after_fetching_when_charges_cannot_be_searched(post, fhir) -> None:
    """Many FHIR servers do not support ChargeItem: its failed search does not make an unrelated
    discharge a pump visit, nor a 412."""
    fhir.faults["ChargeItem"] = Fault(status=404)
    body = load("inferno-crd-encounter-discharge-hook-request.json")
    body["fhirServer"] = fhir.base
    resp = post(ENCOUNTER_CLOSE, body)
    assert resp.status_code == 200 and resp.json() == {"cards": []}
