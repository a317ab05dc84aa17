"""The same audit/feedback round trip on the real PostgreSQL, in a schema of its own per test run
(so parallel runs never see each other's rows); skipped with a message when PostgreSQL is down."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, inspect

from service.app import create_app
from service.store.migrate import STEPS, current_version
from service.store.report import feedback_report

from .helpers import (
    FEEDBACK_URL,
    SERVICE_URL,
    MarkedCards,
    accepted,
    audit_rows,
    card_rows,
    feedback_rows,
    overridden,
    postgres_schema,
    reachable,
    request_with_a_card,
)
from .test_migrate import run_workers_at_once

pytestmark = pytest.mark.postgres

REASON = {"code": "not-indicated", "system": "urn:test:reasons", "display": "Not indicated"}


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not reachable(5432):
        pytest.skip("PostgreSQL on 127.0.0.1:5432 not reachable: the PostgreSQL store tests are skipped")
    with postgres_schema("pumpcds_t") as url:
        yield url


def test_round_trip_on_postgresql(settings, pg_url):
    app = create_app(settings, database_url=pg_url)
    store = app.extensions["pumpcds"].store
    assert store.engine.dialect.name == "postgresql"
    assert "audit_record" in inspect(store.engine).get_table_names()
    client = app.test_client()
    assert client.get("/readyz").status_code == 200

    app.extensions["pumpcds"].cards = MarkedCards([("SEL-MATRIX", "1", 1), ("NCCI-PTP-62367-95990", "2", 0),
                                                   ("DOC-QHP", "1", 0)])
    body = request_with_a_card()
    cards = client.post(SERVICE_URL, json=body).get_json()["cards"]
    assert app.extensions["pumpcds"].audit_queue.flush(timeout_s=10)
    [audit] = audit_rows(store.engine)
    assert audit["hook_instance"] == body["hookInstance"] and audit["card_uuids"] == [c["uuid"] for c in cards]
    assert [r["rule_id"] for r in card_rows(store.engine)] == ["SEL-MATRIX", "NCCI-PTP-62367-95990", "DOC-QHP"]

    resp = client.post(FEEDBACK_URL, json={"feedback": [
        accepted(cards[0]["uuid"], cards[0]["suggestions"][0]["uuid"]),
        overridden(cards[1]["uuid"], REASON, "seen elsewhere"),
        overridden(cards[2]["uuid"]),
        overridden("never-issued"),
    ]})
    assert resp.status_code == 200
    stored = feedback_rows(store.engine)
    assert [(r["rule_id"], r["outcome"], r["card_known"]) for r in stored] == [
        ("SEL-MATRIX", "accepted", True), ("NCCI-PTP-62367-95990", "overridden", True),
        ("DOC-QHP", "overridden", True), (None, "overridden", False)]
    assert stored[0]["accepted_suggestions"] == [cards[0]["suggestions"][0]["uuid"]]
    assert (stored[1]["override_reason_code"], stored[1]["override_comment"]) == ("not-indicated", "seen elsewhere")
    assert stored[2]["override_reason_code"] is None

    report = feedback_report(store.engine)
    by_rule = {r.rule_id: r for r in report.rules}
    assert (by_rule["SEL-MATRIX"].cards_issued, by_rule["SEL-MATRIX"].accepted) == (1, 1)
    assert (by_rule["NCCI-PTP-62367-95990"].overridden, by_rule["NCCI-PTP-62367-95990"].override_rate) == (1, 1.0)
    assert {r.code: r.count for r in report.reasons} == {"not-indicated": 1, "(no reason given)": 2}
    store.dispose()


def test_workers_starting_together_migrate_once_on_postgresql(pg_url):
    results = run_workers_at_once(pg_url)
    assert all(kind == "ok" for kind, _ in results), results
    assert sorted((v for _, v in results), key=len) == [[]] * (len(results) - 1) + [[s.version for s in STEPS]]
    engine = create_engine(pg_url)
    assert current_version(engine) == STEPS[-1].version
    engine.dispose()
