"""The test/demo FHIR server over real HTTP: what a browser client and the service's own FHIR client
need from it (metadata, CORS, GET and POST search, the search parameters), and its extension point."""
from __future__ import annotations

from typing import Any

import pytest
import requests
from flask import Blueprint

from service.devtools import fhir_search
from service.devtools.fhir_server import FhirTestServer

ORIGIN = "https://sandbox.cds-hooks.org"


def procedure(pid: str, rid: str, when: str, code: str = "refill", status: str = "completed", enc: str = "e1") -> dict[str, Any]:
    return {"resourceType": "Procedure", "id": rid, "status": status, "subject": {"reference": f"Patient/{pid}"},
            "encounter": {"reference": f"Encounter/{enc}"}, "performedDateTime": when,
            "code": {"coding": [{"system": "http://pumpcds.org/fhir/CodeSystem/pump-visit", "code": code}]}}


@pytest.fixture
def fhir(live_server_factory):
    store = FhirTestServer(page_size=10)
    store.add([
        {"resourceType": "Patient", "id": "p1", "name": [{"family": "One", "given": ["Demo"]}]},
        procedure("p1", "a", "2026-03-01T09:00:00-05:00", "electronic-analysis"),
        procedure("p1", "b", "2026-03-01T09:30:00-05:00", "refill"),
        procedure("p1", "c", "2025-12-10T10:00:00-05:00", "reprogramming", enc="e0"),
        procedure("p1", "d", "2026-03-02", "refill", status="entered-in-error"),
        procedure("p2", "x", "2026-03-01T09:00:00Z"),
        {"resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order",
         "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-03-01T08:00:00-05:00",
         "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62369"}]}},
        {"resourceType": "Coverage", "id": "cov1", "status": "active", "beneficiary": {"reference": "Patient/p1"}},
    ])
    server = live_server_factory(store.wsgi())
    store.base = f"{server.url}/fhir"  # type: ignore[attr-defined]
    return store


def ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def search(fhir, rtype: str, query: str, post: bool = False, **kw: Any) -> requests.Response:
    if post:
        return requests.post(f"{fhir.base}/{rtype}/_search", data=query, timeout=5,
                             headers={"Content-Type": "application/x-www-form-urlencoded", **kw.get("headers", {})})
    return requests.get(f"{fhir.base}/{rtype}?{query}", timeout=5, headers=kw.get("headers", {}))


def test_metadata_is_an_r4_capability_statement_matching_the_search_table(fhir):
    statement = requests.get(f"{fhir.base}/metadata", timeout=5).json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1" and statement["kind"] == "instance"
    assert "application/fhir+json" in statement["format"]
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    for rtype, params in fhir_search.SEARCH_PARAMETERS.items():
        declared = {(p["name"], p["type"]) for p in resources[rtype]["searchParam"]}
        assert declared == {(p.name, p.kind) for p in params.values()}, rtype
    assert statement["implementation"]["url"] == fhir.base


@pytest.mark.parametrize("path,method,headers", [
    ("/metadata", "GET", "accept"),
    ("/Procedure/_search", "POST", "content-type"),
    ("/Procedure", "GET", "authorization"),
    ("/Patient/p1", "GET", "accept,authorization"),
])
def test_cors_preflight_for_any_origin_including_private_network_access(fhir, path, method, headers):
    pre = requests.options(f"{fhir.base}{path}", timeout=5, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers,
        "Access-Control-Request-Private-Network": "true"})
    assert pre.status_code in (200, 204)
    assert pre.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)
    assert method in pre.headers["Access-Control-Allow-Methods"]
    assert set(headers.split(",")) <= {h.strip().lower() for h in pre.headers["Access-Control-Allow-Headers"].split(",")}
    assert pre.headers.get("Access-Control-Allow-Private-Network") == "true"


def test_every_answer_carries_cors_even_errors(fhir):
    for resp in (requests.get(f"{fhir.base}/Patient/nope", headers={"Origin": ORIGIN}, timeout=5),
                 requests.get(f"{fhir.base}/no/such/route/here", headers={"Origin": ORIGIN}, timeout=5),
                 search(fhir, "Procedure", "date=notadate", headers={"Origin": ORIGIN}),
                 search(fhir, "Procedure", "patient=p1", post=True, headers={"Origin": ORIGIN})):
        assert resp.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN), resp.url
        assert resp.headers["Content-Type"].startswith("application/fhir+json")
    assert requests.get(f"{fhir.base}/Patient/nope", timeout=5).json()["resourceType"] == "OperationOutcome"


def test_post_search_equals_get_search(fhir):
    query = "patient=p1&date=ge2026-03-01&_sort=-date"
    got, posted = search(fhir, "Procedure", query).json(), search(fhir, "Procedure", query, post=True).json()
    assert ids(got) == ids(posted) == ["d", "b", "a"]
    assert posted["type"] == "searchset" and posted["total"] == 3
    assert any(r.method == "POST" and r.query.get("patient") == "p1" for r in fhir.requests)


@pytest.mark.parametrize("query,expected", [
    ("patient=p1", ["a", "b", "c", "d"]),
    ("patient=Patient/p1", ["a", "b", "c", "d"]),
    ("subject=p2", ["x"]),
    ("encounter=e0", ["c"]),
    ("_id=a,c", ["a", "c"]),
    ("patient=p1&status=completed", ["a", "b", "c"]),
    ("patient=p1&code=refill", ["b", "d"]),
    ("patient=p1&code=http://pumpcds.org/fhir/CodeSystem/pump-visit|reprogramming", ["c"]),
    ("patient=p1&code=http://other.example|refill", []),
    ("patient=p1&code=electronic-analysis,reprogramming", ["a", "c"]),
    ("patient=p1&date=2026-03-01", ["a", "b"]),
    ("patient=p1&date=eq2026-03", ["a", "b", "d"]),
    ("patient=p1&date=lt2026-01-01", ["c"]),
    ("patient=p1&date=gt2026-03-01", ["d"]),
    ("patient=p1&date=le2026-03-01", ["a", "b", "c"]),
    ("patient=p1&date=ge2026-03-01&date=le2026-03-01", ["a", "b"]),
    ("patient=p1&date=ne2026-03-01", ["c", "d"]),
    ("patient=p1&date=ge2026-03-01T14:15:00Z", ["b", "d"]),
    ("patient=p1&unknown-param=1", ["a", "b", "c", "d"]),
])
def test_search_parameters(fhir, query, expected):
    bundle = search(fhir, "Procedure", query + "&_count=10").json()
    assert sorted(ids(bundle)) == expected, bundle


def test_other_types_search_by_their_own_parameters(fhir):
    assert ids(search(fhir, "ServiceRequest", "patient=p1&status=active,completed&_sort=-authored").json()) == ["sr1"]
    assert ids(search(fhir, "ServiceRequest", "patient=p1&authored=2026-03-01").json()) == ["sr1"]
    assert ids(search(fhir, "Coverage", "patient=p1&status=active").json()) == ["cov1"]
    assert search(fhir, "Condition", "patient=p1").json()["total"] == 0
    assert ids(search(fhir, "Patient", "").json()) == ["p1"]


def test_paging_with_next_links(fhir):
    first = search(fhir, "Procedure", "patient=p1&_sort=date&_count=3").json()
    assert ids(first) == ["c", "a", "b"] and first["total"] == 4
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = requests.get(nxt, timeout=5).json()
    assert ids(second) == ["d"] and not [link for link in second["link"] if link["relation"] == "next"]


def test_bad_searches_are_400_with_a_reason(fhir):
    assert search(fhir, "Procedure", "date=yesterday").status_code == 400
    bad_sort = search(fhir, "Procedure", "_sort=patient")
    assert bad_sort.status_code == 400 and "sort" in bad_sort.json()["issue"][0]["diagnostics"]
    assert search(fhir, "Procedure", "_count=many").status_code == 400
    strict = search(fhir, "Procedure", "colour=blue", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400 and "colour" in strict.json()["issue"][0]["diagnostics"]
    not_form = requests.post(f"{fhir.base}/Procedure/_search", json={"patient": "p1"}, timeout=5)
    assert not_form.status_code == 415


def test_read_by_id_and_unknown_resources(fhir):
    assert requests.get(f"{fhir.base}/Procedure/a", timeout=5).json()["id"] == "a"
    assert requests.get(f"{fhir.base}/Procedure/zzz", timeout=5).status_code == 404
    assert requests.delete(f"{fhir.base}/Procedure/a", timeout=5).status_code == 405


class EchoOperation:
    """A minimal feature: a system-level `$echo` operation, as Bulk Data `$export` would be added."""

    def register(self, blueprint: Blueprint, server: FhirTestServer) -> None:
        @blueprint.get("/$echo")
        def echo():  # type: ignore[no-untyped-def]
            return server.answer({"resourceType": "Parameters", "parameter": [{"name": "count", "valueInteger": len(server.resources)}]})

        @blueprint.get("/<rtype:rtype>/$echo")
        def echo_type(rtype: str):  # type: ignore[no-untyped-def]
            return server.answer({"resourceType": "Parameters", "parameter": [{"name": "count", "valueInteger": len(server.of_type(rtype))}]})

    def describe(self, rest: dict[str, Any]) -> None:
        rest.setdefault("operation", []).append({"name": "echo", "definition": "http://example.org/OperationDefinition/echo"})


def test_features_add_routes_and_capabilities_without_touching_the_core(live_server_factory):
    store = FhirTestServer(features=[EchoOperation()])
    store.add([procedure("p1", "a", "2026-03-01"), procedure("p1", "b", "2026-03-01")])
    base = f"{live_server_factory(store.wsgi()).url}/fhir"
    assert requests.get(f"{base}/$echo", timeout=5).json()["parameter"][0]["valueInteger"] == 2
    assert requests.get(f"{base}/Procedure/$echo", timeout=5).json()["parameter"][0]["valueInteger"] == 2
    assert requests.get(f"{base}/Procedure/a", timeout=5).json()["id"] == "a"  # reads still route to the core
    assert requests.get(f"{base}/$echo", headers={"Origin": ORIGIN}, timeout=5).headers["Access-Control-Allow-Origin"]
    statement = requests.get(f"{base}/metadata", timeout=5).json()
    assert statement["rest"][0]["operation"][0]["name"] == "echo"
