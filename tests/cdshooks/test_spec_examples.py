"""The public example documents of the CDS Hooks spec and hook library are accepted as inputs."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from service.cdshooks.validation import validator

EXAMPLES = Path(__file__).parent / "spec_examples"


def example(name: str):
    return json.loads((EXAMPLES / name).read_text())


def order_sign_request(**extra):
    return {"hook": "order-sign", "hookInstance": str(uuid.uuid4()), **example("order-sign-r4-context.json"), **extra}


def test_library_order_sign_r4_example_is_accepted(client):
    body = order_sign_request(prefetch={"device": None, "procedures": None})
    resp = client.post("/cds-services/pump-visit-coding-order-sign", json=body)
    assert resp.status_code == 200, resp.get_json()
    assert "cards" in resp.get_json()


def test_library_order_sign_example_without_prefetch_or_server_is_no_cards(client):
    """A diet order and an antibiotic are no pump visit: no 412 for unfilled prefetch (issue 11)."""
    resp = client.post("/cds-services/pump-visit-coding-order-sign", json=order_sign_request())
    assert resp.status_code == 200 and resp.get_json() == {"cards": []}


def test_stu3_style_dosage_in_r4_example_is_repaired_not_rejected(app):
    from service.cdshooks.validation import check_request
    from service.fhir.prefetch import PrefetchResolver

    runtime = app.extensions["pumpcds"]
    service = runtime.services["pump-visit-coding-order-sign"]
    request = check_request(service, order_sign_request(prefetch={"device": None, "procedures": None}))
    for validation in ("off", "strict"):
        seen = {"r": PrefetchResolver(100, validation=validation).gather(request, None)}
        orders = seen["r"].draft_orders
        assert [o["resourceType"] for o in orders] == ["MedicationRequest"]  # NutritionOrder is not read
    # R4 validation drops the STU3 element (which no fact reads) and says so
    assert any("doseQuantity" in i.problem and not i.skipped for i in seen["r"].issues)


@pytest.mark.parametrize("name", ["feedback-accepted.json", "feedback-overridden.json", "feedback-overridden-reason.json"])
def test_spec_feedback_examples_are_accepted(client, name):
    resp = client.post("/cds-services/pump-visit-coding-order-sign/feedback", json=example(name))
    assert resp.status_code in (200, 204), resp.get_json()


def test_spec_full_response_example_passes_the_response_schema():
    assert list(validator("response").iter_errors(example("response-full.json"))) == []


def test_spec_autolaunchable_example_lacks_indicator_and_is_rejected():
    errors = list(validator("response").iter_errors(example("response-autolaunchable-no-indicator.json")))
    assert any("indicator" in e.message for e in errors)
