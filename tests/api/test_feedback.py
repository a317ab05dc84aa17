"""Feedback round trips through the real app and database: stored, traced to the card's rule,
unknown cards flagged, malformed bodies refused, and a 503 the client can retry when the DB is down."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.cdshooks.services import ORDER_SIGN_SERVICE_ID
from service.store import tables
from tests.store.helpers import (
    FEEDBACK_URL,
    SERVICE_URL,
    MarkedCards,
    accepted,
    down_database_url,
    feedback_rows,
    overridden,
    request_with_a_card,
)

EXAMPLES = Path(__file__).parents[1] / "cdshooks" / "spec_examples"
REASON = {"code": "already-billed", "system": "https://pumpcds.org/fhir/CodeSystem/override-reason",
          "display": "Already billed this visit"}


def issue_cards(app, client, specs):
    builder = MarkedCards(specs)
    app.extensions["pumpcds"].cards = builder
    resp = client.post(SERVICE_URL, json=request_with_a_card())
    assert resp.status_code == 200
    return resp.get_json()["cards"]


def engine_of(app):
    runtime = app.extensions["pumpcds"]
    assert runtime.audit_queue.flush(timeout_s=10)
    return runtime.store.engine


def feedback_count(client, rule: str, outcome: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "pumpcds_feedback_outcomes_total" and sample.labels == {
                    "service": ORDER_SIGN_SERVICE_ID, "rule": rule, "outcome": outcome}:
                return sample.value
    return 0.0


def test_accepted_and_overridden_feedback_is_stored_with_the_cards_rule(app, client):
    cards = issue_cards(app, client, [("SEL-MATRIX", "1", 2), ("NCCI-PTP-62367-95990", "2", 0),
                                      ("DOC-QHP", "4", 0)])
    choice = cards[0]["suggestions"][1]["uuid"]
    before = feedback_count(client, "SEL-MATRIX", "accepted")
    body = {"feedback": [
        accepted(cards[0]["uuid"], choice, when="2026-11-20T15:01:02Z"),
        overridden(cards[1]["uuid"], REASON, "billed by the pain clinic", when="2026-11-20T10:01:02-05:00"),
        overridden(cards[2]["uuid"]),
    ]}
    resp = client.post(FEEDBACK_URL, json=body)
    assert resp.status_code == 200
    assert resp.get_json() == {}

    first, second, third = feedback_rows(engine_of(app))
    assert (first["card_uuid"], first["card_known"], first["rule_id"], first["rule_version"], first["outcome"]) == \
        (cards[0]["uuid"], True, "SEL-MATRIX", "1", "accepted")
    assert first["accepted_suggestions"] == [choice]
    assert first["override_reason_code"] is None and first["override_comment"] is None
    assert first["outcome_timestamp"] == "2026-11-20T15:01:02Z"
    assert first["outcome_at"].isoformat() == "2026-11-20T15:01:02"
    assert first["service_id"] == ORDER_SIGN_SERVICE_ID and first["received_at"] is not None

    assert (second["rule_id"], second["rule_version"], second["outcome"]) == ("NCCI-PTP-62367-95990", "2", "overridden")
    assert (second["override_reason_code"], second["override_reason_system"], second["override_reason_display"]) == \
        (REASON["code"], REASON["system"], REASON["display"])
    assert second["override_comment"] == "billed by the pain clinic"
    assert second["outcome_at"].isoformat() == "2026-11-20T15:01:02"  # stored as UTC
    assert second["accepted_suggestions"] == []

    assert (third["rule_id"], third["outcome"], third["card_known"]) == ("DOC-QHP", "overridden", True)
    assert third["override_reason_code"] is None and third["override_comment"] is None

    assert feedback_count(client, "SEL-MATRIX", "accepted") == before + 1


def test_spec_example_feedback_for_unknown_cards_is_stored_and_flagged(app, client):
    for name in ("feedback-accepted.json", "feedback-overridden.json", "feedback-overridden-reason.json"):
        body = json.loads((EXAMPLES / name).read_text())
        assert client.post(FEEDBACK_URL, json=body).status_code == 200, name
    stored = feedback_rows(engine_of(app))
    assert len(stored) == 3
    assert all(not r["card_known"] and r["rule_id"] is None for r in stored)
    with_reason = stored[2]
    assert (with_reason["override_reason_code"], with_reason["override_comment"]) == \
        ("d7ecf885", "A comment entered by the clinician.")


def test_unmarked_card_is_known_but_its_rule_unknown(app, client):
    [card] = issue_cards(app, client, [(None, None, 0)])
    assert client.post(FEEDBACK_URL, json={"feedback": [overridden(card["uuid"])]}).status_code == 200
    [row] = feedback_rows(engine_of(app))
    assert (row["card_known"], row["rule_id"]) == (True, None)


def test_card_of_another_service_is_not_known_here(app, client):
    [card] = issue_cards(app, client, [("SEL-MATRIX", "1", 0)])
    other = "/cds-services/pump-visit-coding-encounter-close/feedback"
    assert client.post(other, json={"feedback": [overridden(card["uuid"])]}).status_code == 200
    [row] = feedback_rows(engine_of(app))
    assert (row["card_known"], row["service_id"]) == (False, "pump-visit-coding-encounter-close")


@pytest.mark.parametrize("body", [
    {"feedback": [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-11-20T15:00:00Z"}]},
    {"feedback": [{"card": "c", "outcome": "ignored", "outcomeTimestamp": "2026-11-20T15:00:00Z"}]},
    {"feedback": [{"card": "c", "outcome": "overridden"}]},
    {"feedback": []},
])
def test_malformed_feedback_is_400_and_stores_nothing(app, client, body):
    resp = client.post(FEEDBACK_URL, json=body)
    assert resp.status_code == 400
    assert resp.get_json()["resourceType"] == "OperationOutcome"
    assert feedback_rows(engine_of(app)) == []


def test_feedback_to_an_unknown_service_is_404(client):
    resp = client.post("/cds-services/no-such-service/feedback", json={"feedback": [overridden("c")]})
    assert resp.status_code == 404


def test_database_down_hook_still_answers_and_feedback_is_503_with_retry_after(settings):
    app = create_app(settings, database_url=down_database_url())
    client = app.test_client()
    hook = client.post(SERVICE_URL, json=request_with_a_card())
    assert hook.status_code == 200 and hook.get_json()["cards"]
    resp = client.post(FEEDBACK_URL, json={"feedback": [overridden("some-card", REASON)]})
    assert resp.status_code == 503
    assert int(resp.headers["Retry-After"]) > 0
    body = resp.get_json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "transient"
    runtime = app.extensions["pumpcds"]
    runtime.close(timeout_s=0)  # shutting down with the database still down: the record is counted
    assert runtime.audit_queue.dropped == 1


def test_write_failure_after_start_is_503_and_the_client_can_retry(app, client):
    """The feedback table disappears under the running service (a failed write), then comes back."""
    with engine_of(app).begin() as conn:
        tables.feedback_item.drop(conn)
    item = overridden("c-retry", REASON)
    first = client.post(FEEDBACK_URL, json={"feedback": [item]})
    assert first.status_code == 503 and "Retry-After" in first.headers
    with engine_of(app).begin() as conn:
        tables.feedback_item.create(conn)
    assert client.post(FEEDBACK_URL, json={"feedback": [item]}).status_code == 200
    assert [r["card_uuid"] for r in feedback_rows(engine_of(app))] == ["c-retry"]
