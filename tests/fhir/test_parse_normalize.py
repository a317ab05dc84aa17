"""Real-world FHIR quirks are repaired and reported; hopeless resources are skipped and reported."""
from __future__ import annotations

from service.fhir.parse import parse_many, parse_resource


def procedure(**changes):
    base = {"resourceType": "Procedure", "id": "p1", "status": "completed", "subject": {"reference": "Patient/x"},
            "performedDateTime": "2026-11-20T09:30:00-05:00",
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62369"}]}}
    base.update(changes)
    return base


def test_valid_resource_parses_without_issues():
    model, issues = parse_resource(procedure(), "prefetch:procedures")
    assert model is not None and model.id == "p1" and issues == []


def test_datetime_without_zone_is_read_as_utc_and_reported():
    model, issues = parse_resource(procedure(performedDateTime="2026-11-20T09:30"), "x")
    assert model.performedDateTime.isoformat() == "2026-11-20T09:30:00+00:00"
    assert not issues[0].skipped and "time zone" in issues[0].problem


def test_codes_with_stray_spaces_are_trimmed():
    raw = procedure(code={"coding": [{"system": " http://www.ama-assn.org/go/cpt ", "code": " 62369 "}]})
    model, issues = parse_resource(raw, "x")
    assert model.code.coding[0].code == "62369"
    assert model.code.coding[0].system == "http://www.ama-assn.org/go/cpt"
    assert "trimmed" in issues[0].problem


def test_empty_values_are_removed():
    model, issues = parse_resource(procedure(note=[], reasonCode=[{"coding": [{}]}], code={"coding": [{}], "text": "pump refill"}), "x")
    assert model is not None and model.note is None and model.code.text == "pump refill"


def test_unknown_elements_are_ignored_once_and_reported():
    model, issues = parse_resource(procedure(vendorFlag=True), "x")
    assert model is not None
    assert "vendorFlag" in issues[0].problem


def test_invalid_id_characters_are_replaced():
    model, issues = parse_resource(procedure(id="proc_1"), "x")
    assert model.id == "proc-1"


def test_dstu2_medication_order_becomes_medication_request():
    raw = {"resourceType": "MedicationOrder", "id": "request-123", "status": "draft", "patient": {"reference": "Patient/pt1"},
           "dateWritten": "2026-11-20",
           "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1991"}]},
           "dosageInstruction": [{"route": {"coding": [{"system": "http://snomed.info/sct", "code": "72607000"}]},
                                  "doseQuantity": {"value": 20, "unit": "mL"}}]}
    model, issues = parse_resource(raw, "draftOrders")
    assert model.get_resource_type() == "MedicationRequest"
    assert model.subject.reference == "Patient/pt1" and model.intent == "order"
    assert model.dosageInstruction[0].route.coding[0].code == "72607000"
    assert model.dosageInstruction[0].doseAndRate[0].doseQuantity.value == 20
    assert "MedicationOrder" in issues[0].problem


def test_bundle_without_type_is_unpacked():
    bundle = {"resourceType": "Bundle", "entry": [{"resource": procedure()}, {"resource": procedure(id="p2")}]}
    models, issues = parse_many([bundle], "prefetch:procedures")
    assert [m.id for m in models] == ["p1", "p2"] and issues == []


def test_invalid_resource_is_skipped_and_reported_not_raised():
    bad = procedure(status=None, subject=None)  # subject is required
    del bad["subject"]
    models, issues = parse_many([bad, procedure(id="ok")], "prefetch:procedures")
    assert [m.id for m in models] == ["ok"]
    assert issues[0].skipped and issues[0].resource_id == "p1" and "subject" in issues[0].problem


def test_garbage_entries_are_reported():
    models, issues = parse_many([42, {"no": "type"}], "prefetch:procedures")
    assert models == [] and len(issues) == 2 and all(i.skipped for i in issues)


def test_types_the_rules_do_not_read_are_ignored_without_parsing():
    models, issues = parse_many([{"resourceType": "Patient", "id": "x", "name": "not even valid"}], "prefetch:patient")
    assert models == [] and issues == []


def test_resources_of_other_encounters_are_not_parsed() -> None:
    from service.fhir.parse import parse_many

    def proc(pid: str, enc: str | None) -> dict:
        r = {"resourceType": "Procedure", "id": pid, "status": "completed", "subject": {"reference": "Patient/p"}}
        if enc:
            r["encounter"] = {"reference": f"Encounter/{enc}"}
        return r

    invalid_other = {"resourceType": "Observation", "id": "bad", "encounter": {"reference": "Encounter/old"}}
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": proc("now", "e1")}, {"resource": proc("old", "e0")}, {"resource": proc("none", None)},
        {"resource": invalid_other}]}
    models, issues = parse_many([bundle], "prefetch:procedures", encounter_id="e1")
    assert sorted(m.id for m in models) == ["none", "now"]
    assert issues == []  # an invalid resource of another visit is irrelevant, not a data-quality problem
    models, issues = parse_many([bundle], "prefetch:procedures")
    assert sorted(m.id for m in models) == ["none", "now", "old"] and len(issues) == 1


def test_a_draft_order_without_intent_is_an_order_but_only_in_draft_orders():
    """The public sandbox sends its MedicationRequest without intent; R4 requires it."""
    raw = {"resourceType": "MedicationRequest", "id": "sandbox-order", "status": "draft",
           "subject": {"reference": "Patient/pt1"},
           "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1289"}]}}
    model, issues = parse_resource(raw, "draftOrders")
    assert model is not None and model.intent == "order"
    assert [i.problem for i in issues if "intent" in i.problem]
    model, issues = parse_resource(raw, "prefetch:medicationRequests")
    assert model is None and "intent" in issues[0].problem


def sandbox_order(**changes):
    """The sandbox's draft order as it sends it (cds-hooks/sandbox createFhirResource, R4 server)."""
    base = {"resourceType": "MedicationRequest", "id": "request-123", "status": "draft",
            "subject": {"reference": "Patient/pt1"}, "authoredOn": "2026-11-20"}
    base.update(changes)
    return base


def test_an_object_where_r4_wants_a_list_is_read_as_a_one_item_list():
    category = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category", "code": "community"}]}
    raw = sandbox_order(intent="order", category=category,
                        medicationCodeableConcept={"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "892582"}]})
    model, issues = parse_resource(raw, "draftOrders")
    assert model is not None and model.category[0].coding[0].code == "community"
    assert [i.skipped for i in issues] == [False] and "single object read as a list: category" in issues[0].problem


def test_a_list_element_holding_a_string_is_still_refused():
    model, issues = parse_resource(sandbox_order(intent="order", category="community",
                                                 medicationCodeableConcept={"text": "x"}), "draftOrders")
    assert model is None and issues[0].skipped


def test_a_draft_drug_order_without_a_drug_is_read_as_an_unnamed_drug():
    model, issues = parse_resource(sandbox_order(), "draftOrders")
    assert model is not None and model.medicationCodeableConcept.coding is None
    assert model.medicationCodeableConcept.text == "no medication named in the draft order"
    assert model.intent == "order" and [i.skipped for i in issues] == [False]
    # outside the orders being signed the same resource is simply invalid
    model, issues = parse_resource(sandbox_order(intent="order"), "prefetch:orders")
    assert model is None and issues[0].skipped
