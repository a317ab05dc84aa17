"""The order-sign `orders` prefetch key: the visit's orders signed earlier are read with the drafts
(a refill drug signed after the pump check), never edited, and never reported when absent."""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from service.cdshooks.services import ORDER_SIGN_SERVICE_ID, build_services
from service.config import load_settings
from service.devtools.demo_data import load_demo_set
from service.devtools.fhir_server import Fault, FhirTestServer

URL = f"/cds-services/{ORDER_SIGN_SERVICE_ID}"
TODAY = dt.date(2026, 11, 20)
TEMPLATES = {t.key: t for t in build_services(load_settings(environ={}))[ORDER_SIGN_SERVICE_ID].prefetch}


def visit(patient_id: str, day: dt.date = TODAY) -> list[dict[str, Any]]:
    """A demo patient's record with the pump visit on `day` (service/devtools/demo)."""
    out = []
    for r in load_demo_set().resources(day):
        refs = [r.get(k, {}).get("reference") for k in ("subject", "patient", "beneficiary") if isinstance(r.get(k), dict)]
        if f"Patient/{patient_id}" in refs or r["resourceType"] in ("Practitioner", "PractitionerRole"):
            out.append(r)
    return out


def body(patient_id: str, resources: list[dict[str, Any]], *, keys: tuple[str, ...], fhir_server: str | None = None) -> dict[str, Any]:
    prefetch: dict[str, Any] = {}
    for key in keys:
        template = TEMPLATES[key]
        hits = [r for r in resources if r["resourceType"] in template.types]
        if key == "practitioner":
            prefetch[key] = next(r for r in hits if r["id"] == "COREPRACTITIONER1")
        else:
            prefetch[key] = {"resourceType": "Bundle", "type": "searchset", "total": len(hits),
                             "entry": [{"resource": r} for r in hits]}
    draft = {"resourceType": "MedicationRequest", "id": "request-123", "status": "draft",
             "subject": {"reference": f"Patient/{patient_id}"}, "authoredOn": TODAY.isoformat()}
    out: dict[str, Any] = {"hook": "order-sign", "hookInstance": str(uuid.uuid4()),
                           "context": {"userId": "Practitioner/COREPRACTITIONER1", "patientId": patient_id,
                                       "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]}},
                           "prefetch": prefetch}
    if fhir_server:
        out["fhirServer"] = fhir_server
    return out


ALL_BUT_ORDERS = ("procedures", "observations", "medicationAdministrations", "device", "coverage", "practitioner", "practitionerRoles")


def rules(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.get_json()
    return [c["extension"]["pumpcds"]["ruleId"] for c in resp.get_json()["cards"]]


def test_a_wrong_code_on_an_order_signed_earlier_gets_its_card_but_no_edit(client):
    resources = visit("pump-demo-wrong-code")
    resp = client.post(URL, json=body("pump-demo-wrong-code", resources, keys=(*ALL_BUT_ORDERS, "orders")))
    assert rules(resp) == ["SEL-MATRIX"]
    [card] = resp.get_json()["cards"]
    assert "62368" in card["summary"] and "62367" in card["summary"]
    assert "suggestions" not in card  # the earlier order is not the client's to edit at this signing


def test_without_the_key_the_drafts_are_checked_alone_and_nothing_is_reported(client):
    resources = visit("pump-demo-wrong-code")
    resp = client.post(URL, json=body("pump-demo-wrong-code", resources, keys=ALL_BUT_ORDERS))
    assert rules(resp) == ["SEL-MATRIX"]  # no DQ-INPUT card about the missing key
    assert "Add code 62368" in resp.get_json()["cards"][0]["summary"]


def test_orders_of_another_day_are_not_this_visits(client):
    resources = visit("pump-demo-wrong-code")
    earlier = [dict(r, authoredOn="2026-10-01T08:00:00-05:00", occurrenceDateTime="2026-10-01T08:00:00-05:00")
               if r["resourceType"] == "ServiceRequest" else r for r in resources]
    resp = client.post(URL, json=body("pump-demo-wrong-code", earlier, keys=(*ALL_BUT_ORDERS, "orders")))
    assert "Add code 62368" in resp.get_json()["cards"][0]["summary"]


def test_a_missing_key_is_fetched_from_the_fhir_server(client, live_server_factory):
    resources = visit("pump-demo-bundling")
    ehr = FhirTestServer()
    ehr.add(resources)
    base = f"{live_server_factory(ehr.wsgi()).url}/fhir"
    resp = client.post(URL, json=body("pump-demo-bundling", resources, keys=ALL_BUT_ORDERS, fhir_server=base))
    assert rules(resp) == ["BUN-ANALYSIS-REFILL"]
    [search] = [r for r in ehr.requests if r.path == "/fhir/ServiceRequest"]
    assert search.query == {"patient": "pump-demo-bundling", "status": "active,completed", "_sort": "-authored", "_count": "50"}


def test_a_failed_fetch_of_the_key_is_not_reported(client, live_server_factory):
    resources = visit("pump-demo-clean-visit")
    ehr = FhirTestServer(faults={"ServiceRequest": Fault(status=500)})
    ehr.add(resources)
    base = f"{live_server_factory(ehr.wsgi()).url}/fhir"
    resp = client.post(URL, json=body("pump-demo-clean-visit", resources, keys=ALL_BUT_ORDERS, fhir_server=base))
    assert [r.path for r in ehr.requests if r.path == "/fhir/ServiceRequest"]
    assert rules(resp) == ["SEL-MATRIX"]  # the code the work calls for; nothing about the failed key
