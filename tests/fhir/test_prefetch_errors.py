"""Gathering the FHIR data raises domain errors; only the HTTP edge turns them into 412/413."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from service.cdshooks.validation import check_request
from service.fhir.errors import PrefetchMissing, TooManyResources
from service.fhir.prefetch import PrefetchResolver

ROOT = Path(__file__).resolve().parents[2]
ORDER = {"resourceType": "ServiceRequest", "id": "sr", "status": "draft", "intent": "order",
         "subject": {"reference": "Patient/pt1"},
         "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62369"}]}}


def body(prefetch):
    return {"hook": "order-sign", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/md", "patientId": "pt1",
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": ORDER}]}},
            "prefetch": prefetch}


def searchset(n):
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": {**ORDER, "id": f"sr{i}"}} for i in range(n)]}


@pytest.fixture
def service(app):
    return app.extensions["pumpcds"].services["pump-visit-coding-order-sign"]


def test_too_many_resources_is_a_domain_error_and_413_at_the_edge(service, client) -> None:
    request = check_request(service, body({"procedures": searchset(5), "device": None}))
    with pytest.raises(TooManyResources) as raised:
        PrefetchResolver(4).gather(request, None)
    assert (raised.value.count, raised.value.limit) == (6, 4)
    resp = client.post("/cds-services/pump-visit-coding-order-sign", json=body({"procedures": searchset(2001), "device": None}))
    assert resp.status_code == 413
    assert resp.get_json()["issue"][0]["diagnostics"] == (
        "the request carries 2002 resources (prefetch and draft orders); this service accepts at most 2000")


def test_required_data_missing_is_a_domain_error_and_412_at_the_edge(service, client) -> None:
    request = check_request(service, body({}))
    with pytest.raises(PrefetchMissing) as raised:
        PrefetchResolver(100).gather(request, None, "no FHIR server in the test")
    assert raised.value.missing and all("no FHIR server in the test" in m for m in raised.value.missing)
    resp = client.post("/cds-services/pump-visit-coding-order-sign", json=body({}))
    assert resp.status_code == 412
    issues = resp.get_json()["issue"]
    assert issues[0]["diagnostics"] == "data the service needs could be had neither from prefetch nor from the FHIR server"
    assert [i["diagnostics"].split(":")[0] for i in issues[1:]] == [m.split(":")[0] for m in raised.value.missing]


def test_the_fhir_layer_knows_nothing_of_http_or_cds_hooks() -> None:
    for path in sorted((ROOT / "service" / "fhir").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                assert "cdshooks" not in module and module not in ("..errors", "service.errors"), (path.name, module)
                assert not module.startswith(("flask", "werkzeug", "..api")), (path.name, module)
