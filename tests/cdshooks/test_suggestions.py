"""Suggestions the EHR can apply: real FHIR through the app, the suggested actions applied to the
request's own resources (create adds, update replaces by id, delete removes by resourceId), the
result parsed with fhir.resources R4B, and the request sent again: the problem is gone."""
from __future__ import annotations

import copy
import json
import uuid
from dataclasses import replace
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from service.cdshooks.services import ENCOUNTER_DISCHARGE_SERVICE_ID, ORDER_SIGN_SERVICE_ID
from service.cdshooks.suggestions import MODIFIER_EXT, VisitFacts
from service.cdshooks.validation import check_request
from service.fhir.prefetch import PrefetchResolver
from service.fhir.resources import VisitResources
from tests.coding.visits import RN, SUPERVISOR, visit
from tests.test_samples import NAMES, _expected, _request, app_for, fhir_for  # noqa: F401 (fixtures)

CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
P = "http://pumpcds.org/fhir/CodeSystem/pump-visit"
ORDER_URL = f"/cds-services/{ORDER_SIGN_SERVICE_ID}"
CLOSE_URL = f"/cds-services/{ENCOUNTER_DISCHARGE_SERVICE_ID}"
DEVICE = {"resourceType": "Device", "id": "pump", "status": "active", "patient": {"reference": "Patient/pt"},
          "deviceName": [{"name": "SynchroMed II", "type": "model-name"}]}
NURSE = {"resourceType": "Practitioner", "id": "rn", "qualification": [
    {"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0360", "code": "RN"}]}}]}


def bundle(resources: list[dict[str, Any]], kind: str = "searchset") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in resources]}


def activity(pid: str, code: str) -> dict[str, Any]:
    """A Procedure of this visit recording a pump activity done by the nurse."""
    return {"resourceType": "Procedure", "id": pid, "status": "completed", "subject": {"reference": "Patient/pt"},
            "encounter": {"reference": "Encounter/enc"}, "performedDateTime": "2026-11-20T10:00:00Z",
            "code": {"coding": [{"system": P, "code": code}]}, "performer": [{"actor": {"reference": "Practitioner/rn"}}],
            "focalDevice": [{"manipulated": {"reference": "Device/pump"}}]}


REFILL_AND_REPROGRAMMING = [activity("p1", "refill"), activity("p2", "reprogramming")]


def order(oid: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "ServiceRequest", "id": oid, "status": "draft", "intent": "order",
            "subject": {"reference": "Patient/pt"}, "encounter": {"reference": "Encounter/enc"},
            "authoredOn": "2026-11-20", "requester": {"reference": "Practitioner/rn"},
            "code": {"coding": [{"system": CPT, "code": code}], "text": f"pump service {code}"}, **extra}


def charge(cid: str, code: str, quantity: int = 1, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "ChargeItem", "id": cid, "status": "billable", "subject": {"reference": "Patient/pt"},
            "context": {"reference": "Encounter/enc"}, "occurrenceDateTime": "2026-11-20",
            "code": {"coding": [{"system": CPT, "code": code}]}, "quantity": {"value": quantity}, **extra}


def order_sign(drafts: list[dict[str, Any]], procedures: list[dict[str, Any]] = REFILL_AND_REPROGRAMMING) -> dict[str, Any]:
    return {"hook": "order-sign", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/rn", "patientId": "pt", "encounterId": "enc",
                        "draftOrders": bundle(drafts, "collection")},
            "prefetch": {"device": bundle([DEVICE]), "procedures": bundle(procedures), "practitioner": NURSE}}


def encounter_close(charges: list[dict[str, Any]], procedures: list[dict[str, Any]] = REFILL_AND_REPROGRAMMING) -> dict[str, Any]:
    return {"hook": "encounter-discharge", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/rn", "patientId": "pt", "encounterId": "enc"},
            "prefetch": {"encounter": {"resourceType": "Encounter", "id": "enc", "status": "finished",
                                       "class": {"code": "AMB"}, "subject": {"reference": "Patient/pt"},
                                       "period": {"start": "2026-11-20T09:00:00Z"}},
                         "device": bundle([DEVICE]), "procedures": bundle(procedures), "practitioner": NURSE,
                         "chargeItems": bundle(charges)}}


def editable(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries a suggestion may change: the draft orders (order-sign) or the ChargeItems."""
    if body["hook"] == "order-sign":
        return body["context"]["draftOrders"]["entry"]
    return body["prefetch"]["chargeItems"]["entry"]


def apply(body: dict[str, Any], suggestion: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The request with the suggestion's actions applied, and each created/updated resource parsed as R4B."""
    body = copy.deepcopy(body)
    body["hookInstance"] = str(uuid.uuid4())
    entries = editable(body)
    parsed = []
    for action in suggestion["actions"]:
        assert action["description"]
        if action["type"] == "delete":
            rtype, rid = action["resourceId"].split("/")
            before = len(entries)
            entries[:] = [e for e in entries if (e["resource"]["resourceType"], e["resource"].get("id")) != (rtype, rid)]
            assert len(entries) == before - 1, f"delete of {action['resourceId']}, which the request did not hold"
            continue
        resource = copy.deepcopy(action["resource"])
        model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)  # valid R4
        parsed.append(model)
        if action["type"] == "update":
            index = [i for i, e in enumerate(entries) if (e["resource"]["resourceType"], e["resource"].get("id")) ==
                     (resource["resourceType"], resource["id"])]
            assert len(index) == 1, "update of a resource the request did not hold"
            entries[index[0]] = {"resource": resource}
        else:
            assert action["type"] == "create" and "id" not in resource
            resource["id"] = "created-1"  # the EHR assigns the id
            entries.append({"resource": resource})
    return body, parsed


def call(client, url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    resp = client.post(url, json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["cards"]


def card_of(cards: list[dict[str, Any]], rule: str) -> dict[str, Any]:
    (card,) = [c for c in cards if c["extension"]["pumpcds"]["ruleId"] == rule]
    return card


def problems(cards: list[dict[str, Any]]) -> list[str]:
    return [c["extension"]["pumpcds"]["ruleId"] for c in cards if c["indicator"] in ("critical", "warning")]


def the_suggestion(card: dict[str, Any]) -> dict[str, Any]:
    assert card["selectionBehavior"] == "at-most-one"
    (s,) = card["suggestions"]
    assert s["isRecommended"] is True and s["uuid"] and s["label"]
    return s


def coding(model: Any) -> list[tuple[str, str]]:
    return [(c.system, c.code) for c in model.code.coding]


def modifiers(model: Any) -> list[str]:
    return [e.valueCoding.code for e in model.extension or () if e.url == MODIFIER_EXT]


# -- order-sign ---------------------------------------------------------------------------------------

def test_order_sign_wrong_code_is_one_card_with_a_whole_resource_update(client) -> None:
    body = order_sign([order("a", "62370")])
    cards = call(client, ORDER_URL, body)
    assert problems(cards) == ["PERF-QHP-STAFF"]  # exactly one critical/warning card
    card = card_of(cards, "PERF-QHP-STAFF")
    assert card["indicator"] == "critical" and card["summary"].startswith("Code 62369, not 62370")
    fixed, (sr,) = apply(body, the_suggestion(card))
    assert sr.get_resource_type() == "ServiceRequest" and sr.id == "a"
    assert coding(sr) == [(CPT, "62369")]
    # the whole resource: everything but the replaced code is as the EHR sent it
    assert (sr.status, sr.intent, sr.subject.reference, sr.encounter.reference, str(sr.authoredOn),
            sr.requester.reference) == ("draft", "order", "Patient/pt", "Encounter/enc", "2026-11-20", "Practitioner/rn")
    assert problems(call(client, ORDER_URL, fixed)) == []


def test_order_sign_bundled_order_is_deleted_by_resource_id(client) -> None:
    body = order_sign([order("a", "62369"), order("b", "95990")])
    cards = call(client, ORDER_URL, body)
    card = card_of(cards, "BUN-ANALYSIS-REFILL")
    suggestion = the_suggestion(card)
    assert [(a["type"], a.get("resourceId")) for a in suggestion["actions"]] == [("delete", "ServiceRequest/b")]
    fixed, parsed = apply(body, suggestion)
    assert parsed == [] and [e["resource"]["id"] for e in editable(fixed)] == ["a"]
    assert problems(call(client, ORDER_URL, fixed)) == []


def test_order_sign_units_above_the_mue_are_set_to_the_limit(client) -> None:
    body = order_sign([order("a", "62369", quantityQuantity={"value": 3})])
    card = card_of(call(client, ORDER_URL, body), "NCCI-MUE")
    assert card["summary"] == "Bill 62369 at most 1 unit a day, not 3"
    fixed, (sr,) = apply(body, the_suggestion(card))
    assert coding(sr) == [(CPT, "62369")] and sr.quantityQuantity.value == 1
    assert "NCCI-MUE" not in problems(call(client, ORDER_URL, fixed))


def test_order_sign_without_a_pump_order_suggests_creating_one(client) -> None:
    body = order_sign([])
    card = card_of(call(client, ORDER_URL, body), "SEL-MATRIX")
    assert card["indicator"] == "info" and card["summary"] == "Add code 62369 for this pump visit"
    fixed, (sr,) = apply(body, the_suggestion(card))
    assert (sr.status, sr.intent, sr.subject.reference, sr.encounter.reference) == ("draft", "order", "Patient/pt", "Encounter/enc")
    assert coding(sr) == [(CPT, "62369")]
    assert "SEL-MATRIX" not in [c["extension"]["pumpcds"]["ruleId"] for c in call(client, ORDER_URL, fixed)]


def test_order_sign_never_touches_the_records_history(client) -> None:
    """A completed Procedure carrying a wrong code is evidence, not an order to change."""
    done = dict(activity("p3", "refill"), code={"coding": [{"system": CPT, "code": "95990"}]})
    body = order_sign([order("a", "62369")], [*REFILL_AND_REPROGRAMMING, done])
    card = card_of(call(client, ORDER_URL, body), "BUN-ANALYSIS-REFILL")
    assert "| code 95990 | procedure record |" in card["detail"]  # seen, in words ...
    assert "Procedure/p3" in [e["reference"] for e in card["extension"]["pumpcds"]["evidence"]]  # ... id for coders
    assert "suggestions" not in card


# -- encounter close -----------------------------------------------------------------------------------

def test_encounter_close_wrong_charge_is_updated(client) -> None:
    body = encounter_close([charge("c1", "62370")])
    cards = call(client, CLOSE_URL, body)
    assert problems(cards) == ["PERF-QHP-STAFF"]
    fixed, (ci,) = apply(body, the_suggestion(card_of(cards, "PERF-QHP-STAFF")))
    assert ci.get_resource_type() == "ChargeItem" and ci.id == "c1" and coding(ci) == [(CPT, "62369")]
    assert (ci.status, ci.subject.reference, ci.context.reference, ci.quantity.value) == ("billable", "Patient/pt", "Encounter/enc", 1)
    assert problems(call(client, CLOSE_URL, fixed)) == []


def test_encounter_close_without_charges_creates_a_full_charge_item(client) -> None:
    body = encounter_close([])
    card = card_of(call(client, CLOSE_URL, body), "SEL-MATRIX")
    fixed, (ci,) = apply(body, the_suggestion(card))
    assert coding(ci) == [(CPT, "62369")]
    assert (ci.status, ci.subject.reference, ci.context.reference, ci.quantity.value) == ("billable", "Patient/pt", "Encounter/enc", 1)
    assert [p.actor.reference for p in ci.performer] == ["Practitioner/rn"]
    assert str(ci.occurrenceDateTime) == "2026-11-20"
    after = call(client, CLOSE_URL, fixed)
    assert "SEL-MATRIX" not in [c["extension"]["pumpcds"]["ruleId"] for c in after] and problems(after) == []


def test_encounter_close_bundled_charge_is_deleted(client) -> None:
    body = encounter_close([charge("c1", "62369"), charge("c2", "95990")])
    card = card_of(call(client, CLOSE_URL, body), "BUN-ANALYSIS-REFILL")
    suggestion = the_suggestion(card)
    assert [(a["type"], a.get("resourceId")) for a in suggestion["actions"]] == [("delete", "ChargeItem/c2")]
    fixed, _ = apply(body, suggestion)
    assert problems(call(client, CLOSE_URL, fixed)) == []


def test_encounter_close_duplicate_family_charges_become_one(client) -> None:
    """Two wrong charges: the first is updated to the right code, the second deleted."""
    body = encounter_close([charge("c1", "62367"), charge("c2", "62368")])
    card = card_of(call(client, CLOSE_URL, body), "BUN-FAMILY-DUP")
    suggestion = the_suggestion(card)
    assert [a["type"] for a in suggestion["actions"]] == ["update", "delete"]
    fixed, (ci,) = apply(body, suggestion)
    assert coding(ci) == [(CPT, "62369")] and len(editable(fixed)) == 1
    assert problems(call(client, CLOSE_URL, fixed)) == []


def test_encounter_close_modifier_25_is_added_to_the_em_charge(client) -> None:
    em = charge("c9", "99214", reason=[{"coding": [{"system": ICD10, "code": "M54.50"}]}])
    body = encounter_close([charge("c1", "62369"), em])
    card = card_of(call(client, CLOSE_URL, body), "EM-SAME-DAY")
    assert card["summary"] == "Add modifier 25 to 99214: a separate problem was handled"
    fixed, (ci,) = apply(body, the_suggestion(card))
    assert ci.id == "c9" and coding(ci) == [(CPT, "99214")] and modifiers(ci) == ["25"]
    assert [(c.system, c.code) for r in ci.reason for c in r.coding] == [(ICD10, "M54.50")]
    assert "EM-SAME-DAY" not in problems(call(client, CLOSE_URL, fixed))


@pytest.mark.parametrize("url, body", [
    (ORDER_URL, order_sign([order("a", "62370")])),
    (CLOSE_URL, encounter_close([charge("c1", "62369"), charge("c2", "95990")])),
])
def test_suggestion_and_card_uuids_are_all_distinct(client, url: str, body: dict[str, Any]) -> None:
    cards = call(client, url, body)
    ids = [c["uuid"] for c in cards] + [s["uuid"] for c in cards for s in c.get("suggestions", ())]
    assert len(ids) == len(set(ids)) and all(uuid.UUID(i) for i in ids)


# -- typed facts, resources as models or as JSON, every emitted resource valid R4 --------------------

def _builder_and_visit(app: Any, body: dict[str, Any]) -> tuple[Any, Any, Any, Any]:

    rt = app.extensions["pumpcds"]
    request = check_request(rt.services[CLOSE_URL.rsplit("/", 1)[1]], body)
    resources = PrefetchResolver(100).gather(request, None, "test: no FHIR server")
    return rt, request, resources, rt.engine.assess(resources)


def test_a_new_charge_reads_date_and_performer_from_the_visit_not_from_card_wording(app) -> None:
    """The engine's template params are card wording: a suggestion never takes a date or a reference from them."""
    rt, request, resources, assessment = _builder_and_visit(app, encounter_close([]))
    (finding,) = [f for f in assessment.findings if f.rule.id == "SEL-MATRIX"]
    worded = replace(finding, params={**finding.params, "date_of_service": "last Tuesday",
                                      "performer_reference": "Practitioner/someone-else"})
    (card,) = rt.cards.build([worded], request, resources, assessment.visit)
    (action,) = card.suggestions[0].actions
    assert action.resource["occurrenceDateTime"] == assessment.visit.date_of_service.isoformat() == "2026-11-20"
    assert action.resource["performer"] == [{"actor": {"reference": "Practitioner/rn"}}]


def test_the_supervising_physician_is_not_the_performer_of_a_new_charge() -> None:
    facts = VisitFacts.of(visit(performers=(SUPERVISOR, RN)), {})
    assert (facts.performer, facts.patient, facts.encounter) == ("Practitioner/rn", "Patient/pt", "Encounter/enc")
    assert VisitFacts.of(None, {"patientId": "pt"}) == VisitFacts("Patient/pt", None)


@pytest.mark.parametrize("url, body", [
    (ORDER_URL, order_sign([order("a", "62370"), order("b", "95990", extension=[
        {"url": MODIFIER_EXT, "valueCoding": {"system": CPT, "code": "59"}}])])),
    (CLOSE_URL, encounter_close([charge("c1", "62367"), charge("c2", "62368"),
                                 charge("c9", "99214", reason=[{"coding": [{"system": ICD10, "code": "M54.50"}]}])])),
])
def test_suggestions_are_the_same_from_resources_as_json_or_as_models(app, url: str, body: dict[str, Any]) -> None:
    """VisitResources may hold parsed models or plain FHIR JSON; the suggestions do not change."""
    rt = app.extensions["pumpcds"]
    request = check_request(rt.services[url.rsplit("/", 1)[1]], body)
    models = PrefetchResolver(100).gather(request, None, "test")
    def plain(r: Any) -> dict[str, Any]:  # the resolver may already give JSON (fhir_validation off)
        return json.loads(json.dumps(r) if isinstance(r, dict) else r.model_dump_json(exclude_none=True, by_alias=True))

    as_json = VisitResources(context=models.context, hook=models.hook,
                             draft_orders=[plain(r) for r in models.draft_orders],
                             resources=[plain(r) for r in models.resources])
    assessment = rt.engine.assess(models)

    def actions(resources: VisitResources) -> list[Any]:
        cards = rt.cards.build(assessment.findings, request, resources, assessment.visit)
        return [[(s.label, [a.as_dict() for a in s.actions]) for s in c.suggestions] for c in cards]

    got = actions(models)
    assert any(got) and got == actions(as_json)


def _emitted(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a["resource"] for c in cards for s in c.get("suggestions", ()) for a in s["actions"] if "resource" in a]


def test_every_resource_any_sample_suggests_is_valid_r4(app_for, fhir_for) -> None:  # noqa: F811
    """Suggestions are written as plain JSON: each one of every sample must still parse as R4B."""
    seen = 0
    for name in NAMES:
        expected = _expected(name)
        resp = app_for(expected).test_client().post(f"/cds-services/{expected['service']}",
                                                    json=_request(name, fhir_for(expected)))
        if resp.status_code != 200:
            continue
        for resource in _emitted(resp.get_json()["cards"]):
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
            seen += 1
    assert seen >= 10, seen  # the samples do suggest changes
