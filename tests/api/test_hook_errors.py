"""Every way a client can get a request wrong gets a precise 4xx, never a 500 (issue 2 §4)."""
from __future__ import annotations

import json
import uuid

import pytest
import requests

ORDER_SIGN = "/cds-services/pump-visit-coding-order-sign"
ENCOUNTER_CLOSE = "/cds-services/pump-visit-coding-encounter-discharge"


def order_sign_body(**changes):
    body = {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "Practitioner/prac-1",
            "patientId": "pat-1",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": []},
        },
        "prefetch": {"device": None, "procedures": None},
    }
    body.update(changes)
    return body


def outcome(resp):
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome", body
    issue = body["issue"][0]
    return issue.get("expression", [None])[0], issue["diagnostics"]


def test_malformed_json(client):
    resp = client.post(ORDER_SIGN, data=b'{"hook": "order-sign",', content_type="application/json")
    assert resp.status_code == 400
    assert "not valid JSON" in outcome(resp)[1]


def test_empty_body(client):
    resp = client.post(ORDER_SIGN, data=b"", content_type="application/json")
    assert resp.status_code == 400
    assert "empty" in outcome(resp)[1]


def test_wrong_content_type(client):
    resp = client.post(ORDER_SIGN, data=json.dumps(order_sign_body()), content_type="text/plain")
    assert resp.status_code == 400
    field, message = outcome(resp)
    assert field == "Content-Type" and "application/json" in message


def test_fhir_json_content_type_is_accepted(client):
    resp = client.post(ORDER_SIGN, data=json.dumps(order_sign_body()), content_type="application/fhir+json")
    assert resp.status_code == 200


def test_body_not_an_object(client):
    resp = client.post(ORDER_SIGN, json=[1, 2])
    assert resp.status_code == 400
    assert "JSON object" in outcome(resp)[1]


@pytest.mark.parametrize("missing", ["hook", "hookInstance", "context"])
def test_missing_envelope_field(client, missing):
    body = order_sign_body()
    del body[missing]
    resp = client.post(ORDER_SIGN, json=body)
    assert resp.status_code == 400
    assert outcome(resp) == (missing, f"missing required field '{missing}'")


def test_hook_does_not_match_service(client):
    resp = client.post(ORDER_SIGN, json=order_sign_body(hook="patient-view"))
    assert resp.status_code == 400
    field, message = outcome(resp)
    assert field == "hook" and "patient-view" in message and "order-sign" in message


@pytest.mark.parametrize("missing", ["userId", "patientId", "draftOrders"])
def test_missing_order_sign_context_field(client, missing):
    body = order_sign_body()
    del body["context"][missing]
    resp = client.post(ORDER_SIGN, json=body)
    assert resp.status_code == 400
    assert outcome(resp) == (f"context.{missing}", f"missing required field 'context.{missing}'")


def test_missing_encounter_id_at_encounter_close(client):
    body = {"hook": "encounter-discharge", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/p", "patientId": "pat-1"}}
    resp = client.post(ENCOUNTER_CLOSE, json=body)
    assert resp.status_code == 400
    assert outcome(resp)[0] == "context.encounterId"


def test_bad_user_id(client):
    body = order_sign_body()
    body["context"]["userId"] = "Patient/pat-1"
    resp = client.post(ORDER_SIGN, json=body)
    assert resp.status_code == 400
    field, message = outcome(resp)
    assert field == "context.userId" and "Practitioner/<id>" in message


def test_draft_orders_not_a_bundle(client):
    body = order_sign_body()
    body["context"]["draftOrders"] = {"resourceType": "MedicationRequest"}
    resp = client.post(ORDER_SIGN, json=body)
    assert resp.status_code == 400
    assert outcome(resp)[0] == "context.draftOrders.resourceType"


def test_prefetch_not_an_object(client):
    resp = client.post(ORDER_SIGN, json=order_sign_body(prefetch=["device"]))
    assert resp.status_code == 400
    field, message = outcome(resp)
    assert field == "prefetch" and "object" in message


def test_prefetch_value_not_a_resource(client):
    resp = client.post(ORDER_SIGN, json=order_sign_body(prefetch={"device": "Device/1"}))
    assert resp.status_code == 400
    assert outcome(resp)[0] == "prefetch.device"


def test_fhir_authorization_without_fhir_server(client):
    auth = {"access_token": "tok", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "pumpcds"}
    resp = client.post(ORDER_SIGN, json=order_sign_body(fhirAuthorization=auth))
    assert resp.status_code == 400
    field, message = outcome(resp)
    assert field == "fhirServer" and "fhirAuthorization" in message


def test_fhir_authorization_incomplete(client):
    auth = {"access_token": "tok", "token_type": "Bearer"}
    resp = client.post(ORDER_SIGN, json=order_sign_body(fhirServer="http://127.0.0.1:9/fhir", fhirAuthorization=auth))
    assert resp.status_code == 400
    assert outcome(resp)[0].startswith("fhirAuthorization.")


def test_hook_instance_wrong_type(client):
    resp = client.post(ORDER_SIGN, json=order_sign_body(hookInstance=42))
    assert resp.status_code == 400
    assert outcome(resp)[0] == "hookInstance"


def test_unknown_service_id(client):
    resp = client.post("/cds-services/no-such-service", json=order_sign_body())
    assert resp.status_code == 404
    assert outcome(resp)[0] == "id"


def test_unknown_path_is_json_404(client):
    resp = client.get("/no/such/path")
    assert resp.status_code == 404
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_wrong_method(client):
    resp = client.get(ORDER_SIGN)
    assert resp.status_code == 405
    assert resp.get_json()["resourceType"] == "OperationOutcome"


def test_body_over_configured_size(settings):
    from service.app import create_app

    app = create_app(settings.with_overrides(max_body_bytes=2048))
    body = order_sign_body()
    body["extension"] = {"org.example.padding": "x" * 4096}
    resp = app.test_client().post(ORDER_SIGN, json=body)
    assert resp.status_code == 413
    assert "2048" in resp.get_json()["issue"][0]["diagnostics"]


PUMP_ORDER = {"resourceType": "ServiceRequest", "id": "sr1", "status": "draft", "intent": "order",
              "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-11-20",
              "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62369"}]}}


def test_required_data_missing_without_fhir_server_is_412(client):
    """412 only when a pump visit is plausible (here: a pump refill order is being signed)."""
    body = order_sign_body(prefetch={})
    body["context"]["draftOrders"]["entry"] = [{"resource": PUMP_ORDER}]
    resp = client.post(ORDER_SIGN, json=body)
    assert resp.status_code == 412
    issues = resp.get_json()["issue"]
    text = " ".join(i["diagnostics"] for i in issues)
    assert "device: not in prefetch" in text and "procedures: not in prefetch" in text
    assert "no fhirServer" in text


def test_nothing_to_judge_and_no_fhir_server_is_no_cards_not_412(client):
    """No draft order, no prefetch, no FHIR server: nothing suggests a pump visit (issue 11)."""
    resp = client.post(ORDER_SIGN, json=order_sign_body(prefetch={}))
    assert resp.status_code == 200 and resp.get_json() == {"cards": []}


def test_null_prefetch_means_no_data_not_an_error(client):
    resp = client.post(ORDER_SIGN, json=order_sign_body())
    assert resp.status_code == 200
    assert resp.get_json() == {"cards": []} or "cards" in resp.get_json()


def test_errors_over_real_http_carry_cors_headers(live_server):
    origin = "https://sandbox.cds-hooks.org"
    resp = requests.post(f"{live_server.url}{ORDER_SIGN}", data="{", headers={"Content-Type": "application/json", "Origin": origin}, timeout=5)
    assert resp.status_code == 400
    assert resp.headers["Access-Control-Allow-Origin"] == origin
    assert resp.json()["resourceType"] == "OperationOutcome"
