"""Bounded input (issue 12): the inputs that used to answer 500 now get a precise 400, or the bad
resource is skipped and reported while the rest of the visit is still coded."""
from __future__ import annotations

import json
from typing import Any

import pytest

from service.config import ConfigError, load_settings
from service.fhir.resources import VisitResources
from tests.conftest import load_sample

ORDER_SIGN = "/cds-services/pump-visit-coding-order-sign"
FEEDBACK = ORDER_SIGN + "/feedback"
SAMPLE = "requests/order-sign-62367-analysis-only.json"  # prefetch Bundles for procedures and observations
DEEP = "@@deep@@"


def nested(depth: int) -> str:
    """JSON text of a value `depth` containers deep (built as text: json.dumps itself recurses)."""
    return "[" * depth + "1" + "]" * depth


def post(client, body: Any, path: str = ORDER_SIGN, deep: int | None = None):
    text = body if isinstance(body, str) else json.dumps(body)
    if deep is not None:
        text = text.replace(json.dumps(DEEP), nested(deep))
    return client.post(path, data=text, content_type="application/json")


def served(app, body: Any, deep: int | None = None) -> tuple[Any, VisitResources]:
    """Post through the real app; also return the visit data that reached the coding rules."""
    runtime = app.extensions["pumpcds"]
    seen: dict[str, VisitResources] = {}
    original = runtime.engine.assess

    def spy(resources: VisitResources) -> Any:
        seen["visit"] = resources
        return original(resources)

    runtime.engine.assess = spy
    try:
        resp = post(app.test_client(), body, deep=deep)
    finally:
        runtime.engine.assess = original
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    return resp, seen["visit"]


def diagnostics(resp) -> tuple[str | None, str]:
    issue = resp.get_json()["issue"][0]
    return (issue.get("expression") or [None])[0], issue["diagnostics"]


# --- the four known 500 causes ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", [[], {}, ["Procedure"], {"value": "Procedure"}, 5, None, True])
def test_non_string_resource_type_in_a_prefetch_bundle_is_skipped_and_reported(app, bad):
    body = load_sample(SAMPLE)
    body["prefetch"]["observations"]["entry"][0]["resource"]["resourceType"] = bad
    _, visit = served(app, body)
    problems = [i for i in visit.issues if i.location == "prefetch:observations" and i.skipped]
    assert len(problems) == 1 and "not a FHIR resource" in problems[0].problem
    assert visit.of_type("Procedure"), "the rest of the visit is still read"


@pytest.mark.parametrize("entry", [5, "entries", {"resource": {"resourceType": "Procedure"}}, True])
def test_prefetch_bundle_whose_entry_is_not_a_list_is_data_not_had(app, entry):
    body = load_sample(SAMPLE)
    body["prefetch"]["observations"]["entry"] = entry
    _, visit = served(app, body)
    assert any(k.startswith("observations:") and "'entry' is not a list" in k for k in visit.unavailable), visit.unavailable
    assert visit.of_type("Procedure")


def test_required_prefetch_bundle_whose_entry_is_not_a_list_is_412_naming_it(client):
    body = load_sample(SAMPLE)
    body["prefetch"]["procedures"]["entry"] = 7
    resp = post(client, body)
    assert resp.status_code == 412
    missing = resp.get_json()["issue"]
    assert any("procedures" in json.dumps(i) and "'entry' is not a list" in json.dumps(i) for i in missing)


@pytest.mark.parametrize("link", [5, "next", {"relation": "next"}, [{"relation": "next", "url": 5}]])
def test_prefetch_bundle_with_a_broken_link_is_data_not_had(app, link):
    body = load_sample(SAMPLE)
    body["prefetch"]["observations"]["link"] = link
    _, visit = served(app, body)
    assert any(k.startswith("observations:") for k in visit.unavailable), visit.unavailable


@pytest.mark.parametrize("depth", [95, 400, 700, 1022])
def test_value_nested_deep_inside_a_prefetch_resource_is_a_400_naming_the_limit(client, depth):
    body = load_sample(SAMPLE)
    body["prefetch"]["observations"]["entry"][0]["resource"]["note"] = DEEP
    resp = post(client, body, deep=depth)
    assert resp.status_code == 400
    field, message = diagnostics(resp)
    assert "more than 100 levels" in message and "at most 100" in message
    if depth < 1000:  # past 1,024 the JSON parser itself stops, before any path is known
        assert field.startswith("prefetch.observations.entry[0]")


@pytest.mark.parametrize("where", ["context", "hook", "extension", "x"])
@pytest.mark.parametrize("depth", [1000, 1030, 5000])
def test_nesting_of_a_thousand_levels_anywhere_in_a_hook_body_is_a_400(client, where, depth):
    body = load_sample(SAMPLE)
    body[where] = DEEP
    resp = post(client, body, deep=depth)
    assert resp.status_code == 400
    assert "levels deep" in diagnostics(resp)[1]


@pytest.mark.parametrize("depth", [101, 1000, 1030])
def test_nesting_of_a_thousand_levels_in_feedback_is_a_400(client, depth):
    body = {"feedback": [{"card": DEEP, "outcome": "overridden", "outcomeTimestamp": "2026-11-20T10:00:00Z"}]}
    resp = post(client, body, FEEDBACK, deep=depth)
    assert resp.status_code == 400
    assert "levels deep" in diagnostics(resp)[1]


def test_nesting_up_to_the_limit_is_read(client):
    body = load_sample(SAMPLE)
    body["extension"] = {"org.example.deep": DEEP}  # body > extension > key > 97 arrays = 100 levels
    assert post(client, body, deep=98).status_code == 200
    assert post(client, body, deep=99).status_code == 400


def test_depth_limit_is_a_setting(settings):
    from service.app import create_app

    client = create_app(settings.with_overrides(max_json_depth=20)).test_client()
    body = load_sample(SAMPLE)
    body["extension"] = {"org.example.deep": DEEP}
    resp = post(client, body, deep=25)
    assert resp.status_code == 400 and "more than 20 levels" in diagnostics(resp)[1]
    with pytest.raises(ConfigError, match="max_json_depth"):
        load_settings(environ={"PUMPCDS_MAX_JSON_DEPTH": "5000"})


# --- odd types inside resources ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"status": ["active"]},
        {"status": {"code": "active"}},
        {"dosageInstruction": 5},
        {"dosageInstruction": [5, "x"]},
        {"dosageInstruction": {"doseQuantity": {"value": 1}}},
    ],
)
def test_dstu2_medication_order_with_odd_types_is_skipped_and_reported(app, change):
    body = load_sample(SAMPLE)
    order = {"resourceType": "MedicationOrder", "id": "mo-1", "status": "active", **change}
    body["context"]["draftOrders"]["entry"].append({"resource": order})
    _, visit = served(app, body)
    mine = [i for i in visit.issues if i.resource_id == "mo-1" or i.resource_type == "MedicationRequest"]
    read = [r for r in visit.draft_orders if r["id"] == "mo-1"]
    assert read or any(i.skipped for i in mine), (mine, read)


# --- feedback dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+14:00"])
def test_feedback_date_with_no_utc_equivalent_is_a_400(client, stamp):
    body = {"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-11-20T10:00:00Z"},
                         {"card": "c-2", "outcome": "overridden", "outcomeTimestamp": stamp}]}
    resp = post(client, body, FEEDBACK)
    assert resp.status_code == 400
    field, message = diagnostics(resp)
    assert field == "feedback[1].outcomeTimestamp" and "UTC" in message


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00-01:00"])
def test_feedback_dates_at_the_edges_of_the_range_are_stored(client, stamp):
    body = {"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": stamp}]}
    assert post(client, body, FEEDBACK).status_code == 200


def test_store_reads_an_out_of_range_date_as_unknown():
    from service.store.db import _utc_naive

    assert _utc_naive("0001-01-01T00:00:00+01:00") is None
    assert _utc_naive("2026-11-20T10:00:00+01:00").isoformat() == "2026-11-20T09:00:00"
