"""Every hook call leaves one audit row (ids and codes only), with one row per card it returned."""
from __future__ import annotations

import json
import logging

from service.cdshooks.services import ORDER_SIGN_SERVICE_ID, build_services, service_for_hook
from service.config import load_settings
from service.devtools.fhir_server import FhirTestServer
from service.store import tables
from tests.security.phi import (
    SAMPLES,
    fhir_server_resources,
    listed_markers,
    markers_in,
    sample_documents,
    sample_requests,
    synthetic_markers,
    synthetic_request,
)

from .helpers import SERVICE_URL, MarkedCards, audit_rows, card_rows, request_with_a_card, rows


def store_of(app):
    return app.extensions["pumpcds"].store


def test_each_hook_call_leaves_one_audit_row_with_its_cards(app, client):
    body = request_with_a_card()
    resp = client.post(SERVICE_URL, json=body)
    assert resp.status_code == 200
    cards = resp.get_json()["cards"]
    assert cards, "the request must yield a card, or this test proves little"

    [audit] = audit_rows(store_of(app).engine)
    assert audit["hook_instance"] == body["hookInstance"]
    assert audit["service_id"] == ORDER_SIGN_SERVICE_ID
    assert audit["status"] == 200
    assert audit["card_uuids"] == [c["uuid"] for c in cards]
    assert audit["latency_ms"] > 0
    assert audit["fhir_calls"] == 0  # everything was prefetched
    assert audit["created_at"] is not None
    stored = card_rows(store_of(app).engine)
    assert [r["card_uuid"] for r in stored] == [c["uuid"] for c in cards]
    assert all(r["audit_id"] == audit["id"] for r in stored)

    client.post(SERVICE_URL, json=request_with_a_card())
    assert len(audit_rows(store_of(app).engine)) == 2


def test_cards_record_rule_id_version_and_suggestion_uuids_and_unmarked_cards_rule_unknown(app, client):
    builder = MarkedCards([("SEL-MATRIX", "1", 2), ("NCCI-PTP-62367-95990", "3", 0), (None, None, 1)])
    app.extensions["pumpcds"].cards = builder
    assert client.post(SERVICE_URL, json=request_with_a_card()).status_code == 200

    stored = card_rows(store_of(app).engine)
    assert [(r["card_uuid"], r["rule_id"], r["rule_version"], r["suggestion_uuids"]) for r in stored] == [
        (c["uuid"],
         c.get("extension", {}).get("pumpcds", {}).get("ruleId"),
         c.get("extension", {}).get("pumpcds", {}).get("ruleVersion"),
         [s["uuid"] for s in c.get("suggestions", [])])
        for c in builder.issued
    ]
    assert stored[2]["rule_id"] is None and len(stored[2]["suggestion_uuids"]) == 1


def test_refused_calls_are_audited_with_their_status(app, client):
    resp = client.post(SERVICE_URL, json={"hook": "order-sign", "hookInstance": "hi-400"})
    assert resp.status_code == 400
    [audit] = audit_rows(store_of(app).engine)
    assert (audit["hook_instance"], audit["status"], audit["card_uuids"]) == ("hi-400", 400, [])


def test_audit_write_failure_costs_nothing_and_logs_ids_only(app, client, caplog):
    """The table vanishes under the running service: the hook still answers 200."""
    with store_of(app).engine.begin() as conn:
        tables.audit_card.drop(conn)
    body = request_with_a_card()
    with caplog.at_level(logging.ERROR, logger="pumpcds.store"):
        resp = client.post(SERVICE_URL, json=body)
    assert resp.status_code == 200 and resp.get_json()["cards"]
    failures = [r.getMessage() for r in caplog.records if "audit write failed" in r.getMessage()]
    assert failures and body["hookInstance"] in failures[0]
    assert body["context"]["patientId"] not in failures[0]


def _service_path(body):
    service = service_for_hook(build_services(load_settings(environ={})), body.get("hook"))
    return f"/cds-services/{service.id}"


def test_audit_tables_hold_no_patient_data_or_tokens(app, client, live_server_factory):
    """Every sample request, the spec example and a synthetic patient full of PHI go through the
    app; no stored audit value contains a name, birth date, note, identifier or token."""
    ehr = FhirTestServer()
    ehr.add(fhir_server_resources())
    if (SAMPLES / "fhir_server").is_dir():
        ehr.load_dir(SAMPLES / "fhir_server")
    ehr_base = f"{live_server_factory(ehr.wsgi()).url}/fhir"

    bodies = [body for _, body in sample_requests()] + [synthetic_request(ehr_base), request_with_a_card()]
    for body in bodies:
        if "fhirServer" in body:
            body["fhirServer"] = ehr_base
        client.post(_service_path(body), json=body)
    assert any(r.headers.get("Authorization", "").startswith("Bearer fhir-phi-test-token-") for r in ehr.requests), \
        "the synthetic request must reach the EHR, or the test proves little"

    markers = listed_markers() | synthetic_markers()
    for doc in sample_documents() + bodies + fhir_server_resources():
        markers |= markers_in(doc)
    markers = {m for m in markers if len(m) >= 5}
    assert markers

    engine = store_of(app).engine
    stored = rows(engine, tables.audit_record) + rows(engine, tables.audit_card)
    assert len(rows(engine, tables.audit_record)) == len(bodies)
    dump = json.dumps(stored, default=str)
    leaked = sorted(m for m in markers if m in dump)
    assert leaked == []


def test_after_a_failed_write_the_audit_pauses_then_resumes(tmp_path, caplog):
    """With the database gone, only the first call of a pause waits for it; the rest skip at once."""
    from service.store.db import Store

    now = [1000.0]
    store = Store(f"sqlite:///{tmp_path / 'pause.db'}", clock=lambda: now[0])
    assert store.ensure_schema()
    record = {"service_id": ORDER_SIGN_SERVICE_ID, "status": 200, "hook_instance": "hi-1", "cards": []}
    store.audit_sink(record)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE audit_record RENAME TO audit_record_away")
    with caplog.at_level(logging.ERROR, logger="pumpcds.store"):
        store.audit_sink({**record, "hook_instance": "hi-2"})  # fails: pause starts
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE audit_record_away RENAME TO audit_record")
        now[0] += store.AUDIT_PAUSE_S / 2
        store.audit_sink({**record, "hook_instance": "hi-3"})  # skipped without touching the DB
        now[0] += store.AUDIT_PAUSE_S
        store.audit_sink({**record, "hook_instance": "hi-4"})  # written again
    assert [r["hook_instance"] for r in audit_rows(store.engine)] == ["hi-1", "hi-4"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("hi-2" in m and "audit paused" in m for m in messages)
    assert any("1 audit record(s) were not written" in m for m in messages)
