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
    """The app's store, once every audit record queued so far has been written."""
    runtime = app.extensions["pumpcds"]
    assert runtime.audit_queue.flush(timeout_s=10)
    return runtime.store


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
    with caplog.at_level(logging.ERROR, logger="pumpcds.audit"):
        resp = client.post(SERVICE_URL, json=body)
        assert resp.status_code == 200 and resp.get_json()["cards"]
        assert not app.extensions["pumpcds"].audit_queue.flush(timeout_s=1)  # kept, waiting for the DB
        app.extensions["pumpcds"].close(timeout_s=0)
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


def test_audit_records_wait_in_the_queue_while_the_database_fails_and_are_written_after(tmp_path, caplog):
    """A failed write keeps the records (in order) and retries; nothing is lost, nothing blocks."""
    from service.store.audit_queue import AuditQueue
    from service.store.db import Store

    store = Store(f"sqlite:///{tmp_path / 'retry.db'}")
    assert store.ensure_schema()
    queue = AuditQueue(store, retry_max_s=0.2)
    record = {"service_id": ORDER_SIGN_SERVICE_ID, "status": 200, "cards": []}
    queue.submit({**record, "hook_instance": "hi-1"})
    assert queue.flush(5)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE audit_record RENAME TO audit_record_away")
    with caplog.at_level(logging.ERROR, logger="pumpcds.audit"):
        for n in (2, 3, 4):
            assert queue.submit({**record, "hook_instance": f"hi-{n}"})  # returns at once
        assert not queue.flush(0.5)  # the database refuses: the records wait
        assert queue.pending() == 3
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE audit_record_away RENAME TO audit_record")
    assert queue.flush(5)
    assert [r["hook_instance"] for r in audit_rows(store.engine)] == ["hi-1", "hi-2", "hi-3", "hi-4"]
    assert any("audit write failed" in r.getMessage() for r in caplog.records)
    assert queue.dropped == 0
    queue.close()


def test_a_full_audit_queue_drops_counts_and_logs_ids_and_close_drains_the_rest(tmp_path, caplog):
    from service.store.audit_queue import AUDIT_RECORDS, AuditQueue
    from service.store.db import Store

    store = Store(f"sqlite:///{tmp_path / 'full.db'}")
    assert store.ensure_schema()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE audit_record RENAME TO audit_record_away")
    queue = AuditQueue(store, capacity=3, retry_max_s=0.1)
    before = AUDIT_RECORDS.labels("queue-full")._value.get()
    record = {"service_id": ORDER_SIGN_SERVICE_ID, "status": 200, "cards": []}
    with caplog.at_level(logging.ERROR, logger="pumpcds.audit"):
        accepted = [queue.submit({**record, "hook_instance": f"hi-{n}"}) for n in range(5)]
    # the writer may hold one batch in flight, so 3 or 4 fit; the rest are refused
    assert accepted[:3] == [True, True, True] and accepted[-1] is False
    assert queue.dropped == accepted.count(False)
    assert AUDIT_RECORDS.labels("queue-full")._value.get() - before == accepted.count(False)
    assert any("audit queue full" in r.getMessage() and "hookInstance=hi-4" in r.getMessage() for r in caplog.records)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE audit_record_away RENAME TO audit_record")
    queue.close(timeout_s=5)  # clean shutdown: everything still queued is stored
    assert len(audit_rows(store.engine)) == accepted.count(True)


def test_an_in_memory_sqlite_database_is_shared_with_the_audit_writer_thread(caplog):
    """`sqlite://` is one database per connection unless every thread shares one: the background
    writer used to find no tables and retry forever (seen in the in-process bench)."""
    from service.app import create_app

    app = create_app(load_settings(environ={}, database_url="sqlite://"))
    with caplog.at_level(logging.ERROR, logger="pumpcds"):
        for _ in range(3):
            assert app.test_client().post(SERVICE_URL, json=request_with_a_card()).status_code == 200
        assert len(audit_rows(store_of(app).engine)) == 3
    assert not [r for r in caplog.records if "audit write failed" in r.getMessage()]


def test_the_writer_gathers_records_into_batches_and_flush_does_not_wait_out_the_linger(tmp_path):
    """Records arriving one by one are stored a batch at a time (the writer does not wake per record),
    and a caller that needs them stored now (flush, close, feedback's catch-up) does not wait."""
    import time

    from service.store.audit_queue import AuditQueue
    from service.store.db import Store

    store = Store(f"sqlite:///{tmp_path / 'linger.db'}")
    assert store.ensure_schema()
    batches: list[int] = []
    write = store.write_audits
    store.write_audits = lambda records: (batches.append(len(records)), write(records))[1]  # type: ignore[method-assign]
    queue = AuditQueue(store, linger_s=2.0)
    record = {"service_id": ORDER_SIGN_SERVICE_ID, "status": 200, "cards": []}
    for n in range(20):
        queue.submit({**record, "hook_instance": f"hi-{n}"})
        time.sleep(0.005)
    started = time.monotonic()
    assert queue.flush(5)
    assert time.monotonic() - started < 1.5  # not the 2 s linger
    assert sum(batches) == 20 and len(batches) <= 2, batches
    assert [r["hook_instance"] for r in audit_rows(store.engine)] == [f"hi-{n}" for n in range(20)]
    queue.close()


def _unrelated_request() -> dict:
    from pathlib import Path

    return json.loads((Path(__file__).resolve().parents[2] / "fhir_samples" / "real_clients"
                       / "inferno-crd-order-sign-hook-request.json").read_text())


def test_calls_the_gate_answers_with_nothing_leave_no_audit_row_by_default(app, client):
    body = _unrelated_request()
    assert client.post(SERVICE_URL, json=body).get_json() == {"cards": []}
    assert client.post(SERVICE_URL, json={"hook": "order-sign"}).status_code == 400  # refused: kept
    client.post(SERVICE_URL, json=request_with_a_card())
    audits = audit_rows(store_of(app).engine)
    assert [a["status"] for a in audits] == [400, 200]
    assert body["hookInstance"] not in {a["hook_instance"] for a in audits}


def test_the_setting_keeps_a_row_for_every_call(settings):
    from service.app import create_app

    app = create_app(settings, audit_unrelated_calls=True)
    body = _unrelated_request()
    assert app.test_client().post(SERVICE_URL, json=body).get_json() == {"cards": []}
    [audit] = audit_rows(store_of(app).engine)
    assert audit["hook_instance"] == body["hookInstance"] and audit["card_uuids"] == []
