from __future__ import annotations

import requests

from service.cdshooks.validation import validator


def test_discovery_lists_order_sign_and_encounter_close_services(client):
    resp = client.get("/cds-services")
    assert resp.status_code == 200
    body = resp.get_json()
    assert list(validator("discovery").iter_errors(body)) == []
    hooks = {(s["id"], s["hook"]) for s in body["services"]}
    assert hooks == {
        ("pump-visit-coding-order-sign", "order-sign"),
        ("pump-visit-coding-encounter-discharge", "encounter-discharge"),
        ("pump-visit-coding-encounter-close", "org.pumpcds.encounter-close"),
    }


def test_discovery_ids_are_unique_one_service_per_hook(client):
    """The sandbox keys services by URL ({discovery}/{id}): a repeated id loses a service."""
    services = client.get("/cds-services").get_json()["services"]
    ids = [s["id"] for s in services]
    hooks = [s["hook"] for s in services]
    assert len(ids) == len(set(ids)) and len(hooks) == len(set(hooks))
    assert "patient-view" not in hooks  # nothing to say on opening a chart (docs: not registered)


def test_a_service_refuses_another_services_hook(client):
    body = {"hook": "encounter-discharge", "hookInstance": "d8a1f0c2-0b5e-4a57-9a3c-1f0e2d3c4b5a",
            "context": {"userId": "Practitioner/p1", "patientId": "pat-1", "encounterId": "enc-1"}}
    resp = client.post("/cds-services/pump-visit-coding-encounter-close", json=body)
    assert resp.status_code == 400
    assert "serves org.pumpcds.encounter-close" in resp.get_json()["issue"][0]["diagnostics"]


def test_custom_hook_name_is_configurable(settings):
    from service.app import create_app

    app = create_app(settings.with_overrides(encounter_close_hook="org.example.visit-close"))
    hooks = {s["hook"] for s in app.test_client().get("/cds-services").get_json()["services"]}
    assert "org.example.visit-close" in hooks and "org.pumpcds.encounter-close" not in hooks


def test_prefetch_templates_use_only_tokens_the_spec_allows(client):
    import re

    allowed = {"context.patientId", "context.encounterId", "context.userId", "userPractitionerId",
               "userPractitionerRoleId", "userPatientId", "userRelatedPersonId"}
    for service in client.get("/cds-services").get_json()["services"]:
        for query in service["prefetch"].values():
            for token in re.findall(r"\{\{\s*([^}]+?)\s*\}\}", query):
                assert token in allowed, (service["id"], query)


def test_discovery_over_real_http_with_cors_preflight(live_server):
    origin = "https://sandbox.cds-hooks.org"
    pre = requests.options(
        f"{live_server.url}/cds-services",
        headers={"Origin": origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"},
        timeout=5,
    )
    assert pre.status_code == 200
    assert pre.headers["Access-Control-Allow-Origin"] == origin
    assert "authorization" in pre.headers["Access-Control-Allow-Headers"].lower()
    resp = requests.get(f"{live_server.url}/cds-services", headers={"Origin": origin}, timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == origin
    assert resp.headers["Cache-Control"] == "no-store"


def test_foreign_origin_gets_no_cors_grant(client):
    resp = client.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers
