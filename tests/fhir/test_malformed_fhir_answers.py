"""A FHIR server's answer is input too (issue 12): odd types or deep nesting in what it returns are
skipped, reported resources or data not had, never a 500."""
from __future__ import annotations

import json

import pytest

from service.devtools.fhir_server import Fault, FhirTestServer
from service.fhir.parse import parse_many, parse_resource
from tests.fhir.test_prefetch_fallback import device, encounter, gathered, practitioner, procedure, request_body


@pytest.fixture
def fhir(live_server_factory):
    store = FhirTestServer(page_size=10)
    store.add([device(), encounter(), practitioner()] + [procedure(i) for i in range(2)])
    store.base = f"{live_server_factory(store.wsgi()).url}/fhir"  # type: ignore[attr-defined]
    return store


def searchset(*resources: object) -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": "searchset",
                       "entry": [{"resource": r} for r in resources]}).encode()


@pytest.mark.parametrize("bad", [[], {}, 5, None, ["Procedure"]])
def test_non_string_resource_type_from_the_fhir_server_is_skipped_and_reported(app, fhir, bad):
    odd = {**procedure(9), "resourceType": bad}
    fhir.faults["Procedure"] = Fault(body=searchset(odd, procedure(1)))
    result, visit = gathered(app, request_body(fhir.base))
    assert result.status == 200, result.body
    assert [p["id"] for p in visit.of_type("Procedure")] == ["proc-1"]
    assert any(i.skipped and "not a FHIR resource" in i.problem for i in visit.issues)


def test_resource_nested_deeper_than_the_limit_from_the_fhir_server_is_skipped(app, fhir):
    deep = json.dumps({**procedure(9), "note": "@@"}).replace('"@@"', "[" * 600 + "1" + "]" * 600)
    fhir.faults["Procedure"] = Fault(body=b'{"resourceType":"Bundle","type":"searchset","entry":[{"resource":'
                                     + deep.encode() + b'},{"resource":' + json.dumps(procedure(1)).encode() + b"}]}")
    result, visit = gathered(app, request_body(fhir.base))
    assert result.status == 200, result.body
    assert [p["id"] for p in visit.of_type("Procedure")] == ["proc-1"]
    assert any("levels deep" in i.problem for i in visit.issues)


def test_parse_resource_checks_depth_before_any_recursive_step():
    deep: object = "x"
    for _ in range(5000):  # far past Python's recursion limit
        deep = {"text": [deep]}
    model, issues = parse_resource({**procedure(1), "note": [deep]}, "prefetch:procedures")
    assert model is None and "levels deep" in issues[0].problem
    bundle = {"resourceType": "Bundle", "entry": [{"resource": {**procedure(1), "note": [deep]}}, {"resource": procedure(2)}]}
    models, issues = parse_many([bundle], "prefetch:procedures")
    assert [m["id"] for m in models] == ["proc-2"] and "levels deep" in issues[0].problem


@pytest.mark.parametrize("raw, says", [
    (5, "a number"), ("Procedure", "a string"), ([], "an array"), (None, "missing or null"),
    ({"id": "x"}, "no resourceType"), ({"resourceType": {"x": 1}}, "not a string"),
])
def test_what_is_not_a_resource_is_said_precisely(raw, says):
    model, issues = parse_resource(raw, "prefetch:procedures")
    assert model is None and says in issues[0].problem and issues[0].skipped


@pytest.mark.parametrize("page", [
    {"resourceType": "Bundle", "type": "searchset", "entry": 5},
    {"resourceType": "Bundle", "type": "searchset", "entry": True},
    {"resourceType": "Bundle", "type": "searchset", "entry": "x"},
    {"resourceType": "Bundle", "type": "searchset", "entry": [5, "x", None, {"resource": 5}]},
    {"resourceType": "Bundle", "type": "searchset", "link": 5},
    {"resourceType": "Bundle", "type": "searchset", "link": [{"relation": "next", "url": 5}]},
    {"resourceType": "Bundle", "type": "searchset", "link": [{"relation": "next", "url": ["x"]}]},
])
def test_malformed_search_bundle_from_the_fhir_server_is_never_a_500(app, fhir, page):
    fhir.faults["Procedure"] = Fault(body=json.dumps(page).encode())
    result, visit = gathered(app, request_body(fhir.base))
    assert result.status in (200, 412), result.body
