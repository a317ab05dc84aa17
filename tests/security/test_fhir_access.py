"""The FHIR access token goes only to an allow-listed fhirServer, for that one request, and nowhere else."""
from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from service.app import create_app
from service.devtools.fhir_server import Fault, FhirTestServer
from service.security.allowlist import fhir_server_allowed, within_base

from .conftest import ORDER_SIGN
from .tokens import auth, mint

FHIR_TOKEN = "fhir-access-token-" + uuid.uuid4().hex


def procedure(i: int) -> dict:
    return {"resourceType": "Procedure", "id": f"proc-{i}", "status": "completed",
            "subject": {"reference": "Patient/pat-1"},
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62367"}]},
            "performedDateTime": "2026-11-20T10:00:00-05:00",
            "performer": [{"actor": {"reference": "Practitioner/prac-9"}}]}


DEVICE = {"resourceType": "Device", "id": "pump-1", "status": "active", "patient": {"reference": "Patient/pat-1"}}
PRACTITIONER = {"resourceType": "Practitioner", "id": "prac-9"}


# a pump order is being signed, so the relevance gate lets the call reach the FHIR server (issue 11)
PUMP_ORDER = {"resource": {"resourceType": "ServiceRequest", "id": "pump-order", "status": "draft", "intent": "order",
                  "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-11-20",
                  "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62367"}]}}}


def hook_body(fhir_server: str, prefetch: dict | None = None) -> dict:
    body = {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": fhir_server,
        "fhirAuthorization": {"access_token": FHIR_TOKEN, "token_type": "Bearer", "expires_in": 300,
                              "scope": "patient/*.read", "subject": "pumpcds"},
        "context": {"userId": "Practitioner/prac-1", "patientId": "pat-1",
                    "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [PUMP_ORDER]}},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


@pytest.fixture
def ehr(live_server_factory):
    store = FhirTestServer(page_size=2)
    store.add([DEVICE, PRACTITIONER] + [procedure(i) for i in range(3)])
    store.base = f"{live_server_factory(store.wsgi()).url}/fhir"  # type: ignore[attr-defined]
    return store


@pytest.fixture
def attacker(live_server_factory):
    """Another loopback server that would love to receive the token."""
    store = FhirTestServer()
    store.add([DEVICE] + [procedure(i) for i in range(3)])
    store.base = f"{live_server_factory(store.wsgi()).url}/fhir"  # type: ignore[attr-defined]
    return store


def test_token_is_sent_on_every_call_to_the_allowed_server(client, ehr):
    resp = client.post(ORDER_SIGN, json=hook_body(ehr.base))
    assert resp.status_code == 200, resp.get_json()
    assert len(ehr.requests) >= 3  # device, procedures (2 pages), ...
    assert {r.headers.get("Authorization") for r in ehr.requests} == {f"Bearer {FHIR_TOKEN}"}


def test_server_off_the_allow_list_gets_zero_hits_and_the_request_412(settings, ehr):
    app = create_app(settings.with_overrides(fhir_server_allowlist=("https://ehr.example.org/fhir",)))
    resp = app.test_client().post(ORDER_SIGN, json=hook_body(ehr.base))
    assert resp.status_code == 412
    assert "allow-list" in " ".join(i["diagnostics"] for i in resp.get_json()["issue"])
    assert ehr.requests == []


def test_plain_http_server_is_not_contacted_outside_development_mode(secure_settings, ehr):
    # even though the loopback host is on the list, production mode requires https
    app = create_app(secure_settings.with_overrides(fhir_server_allowlist=("http://127.0.0.1",)))
    resp = app.test_client().post(ORDER_SIGN, json=hook_body(ehr.base), headers=auth(mint(ORDER_SIGN)))
    assert resp.status_code == 412
    assert ehr.requests == []


def test_next_link_to_another_server_is_not_followed(client, ehr, attacker):
    page = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": procedure(0)}],
            "link": [{"relation": "next", "url": f"{attacker.base}/Procedure?_offset=1"}]}
    resp = client.post(ORDER_SIGN, json=hook_body(ehr.base, {"device": DEVICE, "procedures": page}))
    assert resp.status_code == 200
    assert attacker.requests == []


def test_redirect_to_another_server_is_not_followed(client, ehr, attacker):
    ehr.faults["Device"] = Fault(redirect_to=f"{attacker.base}/Device?patient=pat-1")
    resp = client.post(ORDER_SIGN, json=hook_body(ehr.base, {"procedures": None}))
    assert resp.status_code == 412
    assert attacker.requests == []


def test_path_tricks_do_not_escape_the_allowed_prefix(settings, ehr):
    app = create_app(settings.with_overrides(fhir_server_allowlist=(ehr.base + "/allowed",)))
    for server in (ehr.base + "/allowed/..", ehr.base + "/allowed/%2e%2e", ehr.base + "/allowed-not"):
        resp = app.test_client().post(ORDER_SIGN, json=hook_body(server))
        assert resp.status_code == 412, server
    assert ehr.requests == []


def test_token_is_not_logged_returned_or_stored(settings, ehr, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    app = create_app(settings)
    client = app.test_client()
    ok = client.post(ORDER_SIGN, json=hook_body(ehr.base))
    failed = client.post(ORDER_SIGN, json=hook_body("http://127.0.0.1:9/fhir"))
    assert ok.status_code == 200 and failed.status_code == 412
    for resp in (ok, failed):
        assert FHIR_TOKEN not in resp.get_data(as_text=True)
    assert FHIR_TOKEN not in caplog.text
    assert all(FHIR_TOKEN not in str(r.__dict__) for r in caplog.records)
    for path in Path(tmp_path).rglob("*"):  # the service's database and anything else it wrote
        if path.is_file():
            assert FHIR_TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    "url, allowed",
    [
        ("https://ehr.example.org/fhir", True),
        ("https://ehr.example.org/fhir/", True),
        ("https://EHR.example.org/fhir/r4", True),
        ("https://ehr.example.org:443/fhir", True),
        ("https://ehr.example.org:8443/fhir", False),  # another port is another service
        ("https://ehr.example.org/fhirx", False),
        ("https://ehr.example.org/other", False),
        ("https://ehr.example.org/fhir/../admin", False),
        ("https://ehr.example.org/fhir/%2e%2e/admin", False),
        ("https://ehr.example.org/fhir%2f..%2fadmin", False),
        ("https://user:pw@ehr.example.org/fhir", False),
        ("https://ehr.example.org.evil.test/fhir", False),
        ("https://ehr.example.org/fhir?x=1", False),
        ("https://ehr.example.org/fhir#frag", False),
        ("http://ehr.example.org/fhir", False),  # https only outside development mode
        ("ftp://ehr.example.org/fhir", False),
        ("https://ehr.example.org /fhir", False),
        ("not a url", False),
    ],
)
def test_allow_list_matching(url, allowed):
    assert fhir_server_allowed(url, ("https://ehr.example.org/fhir",), development_mode=False) is allowed


def test_loopback_entries_without_port_match_any_port_only_in_development():
    assert fhir_server_allowed("http://127.0.0.1:5555/fhir", ("http://127.0.0.1",), development_mode=True)
    assert not fhir_server_allowed("http://127.0.0.1:5555/fhir", ("http://127.0.0.1",), development_mode=False)
    assert fhir_server_allowed("https://127.0.0.1:5555/fhir", ("https://127.0.0.1",), development_mode=False)


def test_links_stay_within_the_base():
    base = "https://ehr.example.org/fhir/"
    assert within_base("https://ehr.example.org/fhir/Procedure?page=2", base)
    assert not within_base("https://ehr.example.org/fhir/../Procedure", base)
    assert not within_base("https://ehr.example.org:444/fhir/Procedure", base)
    assert not within_base("http://ehr.example.org/fhir/Procedure", base)
