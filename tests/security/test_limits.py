"""Every limit is configurable and enforced: body size, prefetch resources, Bundle pages, time budget.
Plus the security headers on every kind of answer."""
from __future__ import annotations

import pytest
import requests

from service.app import create_app
from service.devtools.fhir_server import Fault, FhirTestServer

from .conftest import ORDER_SIGN, order_sign_body
from .tokens import auth, mint


def procedure(i: int) -> dict:
    return {"resourceType": "Procedure", "id": f"proc-{i}", "status": "completed",
            "subject": {"reference": "Patient/pat-1"},
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62367"}]},
            "performedDateTime": "2026-11-20T10:00:00-05:00"}


DEVICE = {"resourceType": "Device", "id": "pump-1", "status": "active", "patient": {"reference": "Patient/pat-1"}}


PUMP_ORDER = {"resourceType": "ServiceRequest", "id": "pump-order", "status": "draft", "intent": "order",
              "subject": {"reference": "Patient/pat-1"}, "authoredOn": "2026-11-20",
              "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62367"}]}}


def fetch_body(fhir_base: str, prefetch: dict) -> dict:
    body = order_sign_body()
    body.update(fhirServer=fhir_base, prefetch=prefetch)
    # a pump order is being signed, so the relevance gate lets the call reach the FHIR server (issue 11)
    body["context"]["draftOrders"]["entry"] = [{"resource": PUMP_ORDER}]
    return body


@pytest.fixture
def ehr(live_server_factory):
    store = FhirTestServer(page_size=1)
    store.add([DEVICE] + [procedure(i) for i in range(10)])
    store.base = f"{live_server_factory(store.wsgi()).url}/fhir"  # type: ignore[attr-defined]
    return store


def test_chunked_body_over_the_limit_is_413(settings, live_server_factory):
    app = create_app(settings.with_overrides(max_body_bytes=4096))
    server = live_server_factory(app)
    body = order_sign_body()
    body["extension"] = {"org.example.padding": "x" * 20000}
    data = __import__("json").dumps(body).encode()
    chunks = (data[i : i + 1024] for i in range(0, len(data), 1024))  # no Content-Length: chunked
    resp = requests.post(server.url + ORDER_SIGN, data=chunks, headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 413, resp.text
    assert resp.json()["issue"][0]["code"] == "too-long"


def test_chunked_body_under_the_limit_is_read_whole(settings, live_server_factory):
    app = create_app(settings.with_overrides(max_body_bytes=4096))
    server = live_server_factory(app)
    data = __import__("json").dumps(order_sign_body()).encode()
    assert len(data) < 4096
    chunks = (data[i : i + 100] for i in range(0, len(data), 100))
    resp = requests.post(server.url + ORDER_SIGN, data=chunks, headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 200, resp.text


def test_prefetch_with_too_many_resources_is_413(settings):
    app = create_app(settings.with_overrides(max_prefetch_resources=5))
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": procedure(i)} for i in range(6)]}
    body = order_sign_body()
    body["prefetch"] = {"device": DEVICE, "procedures": bundle}
    resp = app.test_client().post(ORDER_SIGN, json=body)
    assert resp.status_code == 413
    assert "at most 5" in resp.get_json()["issue"][0]["diagnostics"]


def test_prefetch_at_the_limit_is_accepted(settings):
    app = create_app(settings.with_overrides(max_prefetch_resources=5))
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": procedure(i)} for i in range(4)]}
    body = order_sign_body()
    body["prefetch"] = {"device": DEVICE, "procedures": bundle}
    assert app.test_client().post(ORDER_SIGN, json=body).status_code == 200


def test_bundle_pages_fetched_are_capped(settings, ehr):
    app = create_app(settings.with_overrides(fhir_max_bundle_pages=3))
    resp = app.test_client().post(ORDER_SIGN, json=fetch_body(ehr.base, {"device": DEVICE}))
    assert resp.status_code == 200
    assert len(ehr.hits("/fhir/Procedure")) == 3  # 10 pages exist; the cap stops at 3


def test_time_budget_is_shared_by_all_fhir_calls_of_a_request(settings, ehr):
    app = create_app(settings.with_overrides(fhir_time_budget_ms=150))
    ehr.faults["Procedure"] = Fault(delay_s=1.5)
    ehr.faults["Device"] = Fault(delay_s=1.5)
    resp = app.test_client().post(ORDER_SIGN, json=fetch_body(ehr.base, {}))
    assert resp.status_code == 412
    text = " ".join(i["diagnostics"] for i in resp.get_json()["issue"])
    assert "device:" in text and "procedures:" in text and "time budget" in text


NO_CACHE = {"Cache-Control": "no-store", "Pragma": "no-cache", "Expires": "0",
            "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}


def test_security_headers_on_answers_with_patient_data_and_on_errors(secure_client):
    answers = [
        secure_client.post(ORDER_SIGN, json=order_sign_body(), headers=auth(mint(ORDER_SIGN))),  # 200 with cards
        secure_client.get("/cds-services"),  # 401
        secure_client.get("/no-such-page"),  # 404
        secure_client.post(ORDER_SIGN, data="{", content_type="application/json", headers=auth(mint(ORDER_SIGN))),
    ]
    assert [a.status_code for a in answers] == [200, 401, 404, 400]
    for resp in answers:
        for name, value in NO_CACHE.items():
            assert resp.headers.get(name) == value, (resp.status_code, name)
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=")  # public URL is https
        assert resp.headers["X-Request-ID"]


def test_no_hsts_when_served_over_plain_http(client):
    assert "Strict-Transport-Security" not in client.get("/healthz").headers


def test_request_id_from_the_caller_is_echoed_only_when_safe(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    echoed = client.get("/healthz", headers={"X-Request-ID": "Jane Doe <1970-01-01>"}).headers["X-Request-ID"]
    assert "Jane" not in echoed and len(echoed) == 32
