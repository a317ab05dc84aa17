"""GET /metrics: Prometheus text with request latency, FHIR fetches, cards and feedback per rule."""
from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.visits import order_sign_request
from service.api.baseline import BASELINE_PATH
from service.app import create_app
from service.cdshooks.services import ORDER_SIGN_SERVICE_ID
from service.devtools.fhir_server import FhirTestServer
from tests.conftest import response_problems

SERVICE_URL = f"/cds-services/{ORDER_SIGN_SERVICE_ID}"


def scrape(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when none yet)."""
    return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())


def test_metrics_endpoint_lists_every_metric_family(client):
    names = {f.name for f in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))}
    for expected in ("pumpcds_request_duration_seconds", "pumpcds_fhir_fetch_duration_seconds",
                     "pumpcds_fhir_fetch_failures", "pumpcds_cards_issued", "pumpcds_feedback_outcomes"):
        assert expected in names


def test_hook_call_is_timed_under_its_service(client):
    before = scrape(client)
    resp = client.post(SERVICE_URL, json=order_sign_request(30))
    assert resp.status_code == 200
    after = scrape(client)
    key = dict(service=ORDER_SIGN_SERVICE_ID, endpoint="hooks.call_service", status="200")
    assert value(after, "pumpcds_request_duration_seconds_count", **key) == \
        value(before, "pumpcds_request_duration_seconds_count", **key) + 1
    assert value(after, "pumpcds_request_duration_seconds_sum", **key) > \
        value(before, "pumpcds_request_duration_seconds_sum", **key)
    assert value(after, "pumpcds_hook_calls_total", service=ORDER_SIGN_SERVICE_ID, status="200") == \
        value(before, "pumpcds_hook_calls_total", service=ORDER_SIGN_SERVICE_ID, status="200") + 1


def test_unknown_service_ids_do_not_become_labels(client):
    client.post("/cds-services/made-up-service-4711", json={})
    assert "made-up-service-4711" not in client.get("/metrics").get_data(as_text=True)


def test_cards_are_counted_per_rule_of_the_answer(app, client):
    audits: list[dict] = []
    app.extensions["pumpcds"].audit_sinks.append(audits.append)
    body = order_sign_request(30)
    # a Procedure the parser must skip gives at least a data-quality card whatever the rules find
    body["prefetch"]["procedures"]["entry"].append({"resource": {"resourceType": "Procedure", "id": "bad-1",
                                                                 "status": "not-a-status"}})
    before = scrape(client)
    resp = client.post(SERVICE_URL, json=body)
    assert resp.status_code == 200 and resp.get_json()["cards"]
    after = scrape(client)
    rules = audits[-1]["rule_ids"]
    assert rules
    for rule in rules:
        assert value(after, "pumpcds_cards_issued_total", service=ORDER_SIGN_SERVICE_ID, rule=rule) == \
            value(before, "pumpcds_cards_issued_total", service=ORDER_SIGN_SERVICE_ID, rule=rule) + 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fhir_fetches_are_timed_and_failures_counted(client, live_server_factory):
    store = FhirTestServer(page_size=50)
    body = order_sign_request(5)
    for key in ("procedures", "device"):
        store.add([e["resource"] for e in body["prefetch"][key]["entry"]])
    server = live_server_factory(store.wsgi())
    before = scrape(client)
    fetched = dict(body, fhirServer=f"{server.url}/fhir",
                   fhirAuthorization={"access_token": "tok-metrics-1", "token_type": "Bearer", "expires_in": 300,
                                      "scope": "patient/*.read", "subject": "pumpcds"})
    fetched["prefetch"] = {k: v for k, v in body["prefetch"].items() if k not in ("procedures", "device")}
    assert client.post(SERVICE_URL, json=fetched).status_code == 200
    middle = scrape(client)
    assert value(middle, "pumpcds_fhir_fetch_duration_seconds_count", status="2xx") >= \
        value(before, "pumpcds_fhir_fetch_duration_seconds_count", status="2xx") + 2
    assert value(middle, "pumpcds_fhir_fetches_total", service=ORDER_SIGN_SERVICE_ID) >= \
        value(before, "pumpcds_fhir_fetches_total", service=ORDER_SIGN_SERVICE_ID) + 2

    unreachable = dict(fetched, fhirServer=f"http://127.0.0.1:{_closed_port()}/fhir")
    assert client.post(SERVICE_URL, json=unreachable).status_code == 412
    after = scrape(client)
    assert value(after, "pumpcds_fhir_fetch_failures_total", service=ORDER_SIGN_SERVICE_ID) >= \
        value(middle, "pumpcds_fhir_fetch_failures_total", service=ORDER_SIGN_SERVICE_ID) + 1


def test_feedback_outcomes_are_counted_per_rule(app, client):
    feedback = json.loads((Path(__file__).parents[1] / "cdshooks/spec_examples/feedback-accepted.json").read_text())
    card = feedback["feedback"][0]["card"]
    before = scrape(client)
    assert client.post(f"{SERVICE_URL}/feedback", json=feedback).status_code == 200
    middle = scrape(client)
    labels = dict(service=ORDER_SIGN_SERVICE_ID, outcome="accepted")
    assert value(middle, "pumpcds_feedback_outcomes_total", rule="unknown", **labels) == \
        value(before, "pumpcds_feedback_outcomes_total", rule="unknown", **labels) + 1

    app.extensions["pumpcds.card_rule_resolver"] = {card: "NCCI-PTP-62367-95990"}.get
    assert client.post(f"{SERVICE_URL}/feedback", json=feedback).status_code == 200
    after = scrape(client)
    assert value(after, "pumpcds_feedback_outcomes_total", rule="NCCI-PTP-62367-95990", **labels) == \
        value(middle, "pumpcds_feedback_outcomes_total", rule="NCCI-PTP-62367-95990", **labels) + 1


def test_metrics_carry_no_patient_data(client):
    body = order_sign_request(30)
    client.post(SERVICE_URL, json=body)
    text = client.get("/metrics").get_data(as_text=True)
    for value_ in (body["context"]["patientId"], body["hookInstance"], body["context"]["encounterId"]):
        assert value_ not in text


def test_baseline_endpoint_is_off_by_default(client):
    assert client.post(BASELINE_PATH, json={}).status_code == 404


@pytest.mark.parametrize("size", [13, 200, 4096, 20000])
def test_baseline_answers_a_valid_static_response_of_the_configured_size(settings, size):
    client = create_app(settings, benchmark_baseline=True, benchmark_baseline_bytes=size).test_client()
    resp = client.post(BASELINE_PATH, json=order_sign_request(5))
    assert resp.status_code == 200
    assert len(resp.get_data()) == size
    assert response_problems(resp.get_json()) == []


def test_the_gate_verdict_is_counted_for_pump_and_unrelated_calls(client):
    unrelated = json.loads((Path(__file__).resolve().parents[2] / "fhir_samples" / "real_clients"
                            / "inferno-crd-order-sign-hook-request.json").read_text())
    before = scrape(client)
    assert client.post(SERVICE_URL, json=order_sign_request(30)).status_code == 200
    assert client.post(SERVICE_URL, json=unrelated).get_json() == {"cards": []}
    assert client.post(SERVICE_URL, json={"hook": "order-sign"}).status_code == 400
    after = scrape(client)
    for gate in ("pump", "none", "-"):
        assert value(after, "pumpcds_hook_gate_total", service=ORDER_SIGN_SERVICE_ID, gate=gate) == \
            value(before, "pumpcds_hook_gate_total", service=ORDER_SIGN_SERVICE_ID, gate=gate) + 1, gate
