"""Real-world FHIR quirks are repaired and reported; hopeless resources are skipped and reported.

Reading in gives the JSON itself (repaired), in every `fhir_validation` mode; `strict` adds the R4
models' verdict on elements no fact reads."""
from __future__ import annotations

import pytest

from service.fhir.parse import parse_many, parse_resource

MODES = ("off", "relevant", "strict")


def procedure(**changes):
    base = {"resourceType": "Procedure", "id": "p1", "status": "completed", "subject": {"reference": "Patient/x"},
            "performedDateTime": "2026-11-20T09:30:00-05:00",
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62369"}]}}
    base.update(changes)
    return base


@pytest.mark.parametrize("validation", MODES)
def test_valid_resource_parses_without_issues(validation):
    raw = procedure()
    data, issues = parse_resource(raw, "prefetch:procedures", validation=validation)
    assert data == raw and issues == []


@pytest.mark.parametrize("validation", MODES)
def test_datetime_without_zone_is_read_as_utc_and_reported(validation):
    data, issues = parse_resource(procedure(performedDateTime="2026-11-20T09:30"), "x", validation=validation)
    assert data["performedDateTime"] == "2026-11-20T09:30:00Z"
    assert not issues[0].skipped and "time zone" in issues[0].problem


def test_codes_with_stray_spaces_are_trimmed():
    raw = procedure(code={"coding": [{"system": " http://www.ama-assn.org/go/cpt ", "code": " 62369 "}]})
    data, issues = parse_resource(raw, "x")
    assert data["code"]["coding"][0] == {"system": "http://www.ama-assn.org/go/cpt", "code": "62369"}
    assert "trimmed" in issues[0].problem
    assert raw["code"]["coding"][0]["code"] == " 62369 ", "the caller's JSON is not changed"


def test_empty_values_are_removed():
    raw = procedure(note=[], reasonCode=[{"coding": [{}]}], code={"coding": [{}], "text": "pump refill"})
    data, issues = parse_resource(raw, "x", validation="strict")
    assert data is not None and "note" not in data and "reasonCode" not in data and data["code"] == {"text": "pump refill"}
    # without validation the empties stay where no fact reads anything from them
    data, issues = parse_resource(raw, "x", validation="off")
    assert data is raw and issues == []
    data, issues = parse_resource(procedure(status="completed", code={"coding": [{"code": "62369", "display": ""}]}), "x")
    assert data["code"] == {"coding": [{"code": "62369"}]} and "removed empty value code.coding[0].display" in issues[0].problem


def test_unknown_elements_are_ignored_once_and_reported_by_strict_validation():
    data, issues = parse_resource(procedure(vendorFlag=True), "x", validation="strict")
    assert data is not None and "vendorFlag" not in data
    assert "vendorFlag" in issues[0].problem
    # without the models an element nobody reads is simply not read
    data, issues = parse_resource(procedure(vendorFlag=True), "x", validation="off")
    assert data is not None and issues == []


def test_invalid_id_characters_are_replaced():
    data, issues = parse_resource(procedure(id="proc_1"), "x")
    assert data["id"] == "proc-1"


@pytest.mark.parametrize("validation", MODES)
def test_dstu2_medication_order_becomes_medication_request(validation):
    raw = {"resourceType": "MedicationOrder", "id": "request-123", "status": "draft", "patient": {"reference": "Patient/pt1"},
           "dateWritten": "2026-11-20",
           "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1991"}]},
           "dosageInstruction": [{"route": {"coding": [{"system": "http://snomed.info/sct", "code": "72607000"}]},
                                  "doseQuantity": {"value": 20, "unit": "mL"}}]}
    data, issues = parse_resource(raw, "draftOrders", validation=validation)
    assert data["resourceType"] == "MedicationRequest"
    assert data["subject"]["reference"] == "Patient/pt1" and data["intent"] == "order"
    assert data["dosageInstruction"][0]["route"]["coding"][0]["code"] == "72607000"
    assert data["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 20
    assert "MedicationOrder" in issues[0].problem


def test_bundle_without_type_is_unpacked():
    bundle = {"resourceType": "Bundle", "entry": [{"resource": procedure()}, {"resource": procedure(id="p2")}]}
    found, issues = parse_many([bundle], "prefetch:procedures")
    assert [m["id"] for m in found] == ["p1", "p2"] and issues == []


@pytest.mark.parametrize("validation", MODES)
def test_invalid_resource_is_skipped_and_reported_not_raised(validation):
    bad = procedure(status=None, subject=None)  # status and subject are required
    del bad["subject"]
    found, issues = parse_many([bad, procedure(id="ok")], "prefetch:procedures", validation=validation)
    assert [m["id"] for m in found] == ["ok"]
    assert issues[0].skipped and issues[0].resource_id == "p1"
    assert "subject" in issues[0].problem


@pytest.mark.parametrize("validation", MODES)
@pytest.mark.parametrize("element, value, says", [
    ("status", 5, "status"),
    ("performedDateTime", "2026-02-30", "performedDateTime"),
    ("performedDateTime", "yesterday", "performedDateTime"),
    ("code", {"coding": "62369"}, "code.coding"),
    ("code", {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": 62369}]}, "code.coding"),
    ("encounter", "Encounter/e1", "encounter"),
    ("performer", [{"actor": {"reference": 7}}], "performer"),
])
def test_a_wrong_type_in_an_element_the_facts_read_is_skipped_in_every_mode(validation, element, value, says):
    """Unknown is not no: a status, date or code that cannot be read is never read as absent."""
    data, issues = parse_resource(procedure(**{element: value}), "prefetch:procedures", validation=validation)
    assert data is None and issues[0].skipped and says in issues[0].problem


def test_garbage_entries_are_reported():
    found, issues = parse_many([42, {"no": "type"}], "prefetch:procedures")
    assert found == [] and len(issues) == 2 and all(i.skipped for i in issues)


def test_types_the_rules_do_not_read_are_ignored_without_parsing():
    found, issues = parse_many([{"resourceType": "Patient", "id": "x", "name": "not even valid"}], "prefetch:patient")
    assert found == [] and issues == []


def test_resources_of_other_encounters_are_not_parsed() -> None:
    def proc(pid: str, enc: str | None) -> dict:
        r = {"resourceType": "Procedure", "id": pid, "status": "completed", "subject": {"reference": "Patient/p"}}
        if enc:
            r["encounter"] = {"reference": f"Encounter/{enc}"}
        return r

    invalid_other = {"resourceType": "Observation", "id": "bad", "encounter": {"reference": "Encounter/old"}}
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": proc("now", "e1")}, {"resource": proc("old", "e0")}, {"resource": proc("none", None)},
        {"resource": invalid_other}]}
    found, issues = parse_many([bundle], "prefetch:procedures", encounter_id="e1")
    assert sorted(m["id"] for m in found) == ["none", "now"]
    assert issues == []  # an invalid resource of another visit is irrelevant, not a data-quality problem
    found, issues = parse_many([bundle], "prefetch:procedures")
    assert sorted(m["id"] for m in found) == ["none", "now", "old"] and len(issues) == 1


def test_a_draft_order_without_intent_is_an_order_but_only_in_draft_orders():
    """The public sandbox sends its MedicationRequest without intent; R4 requires it."""
    raw = {"resourceType": "MedicationRequest", "id": "sandbox-order", "status": "draft",
           "subject": {"reference": "Patient/pt1"},
           "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1289"}]}}
    data, issues = parse_resource(raw, "draftOrders")
    assert data is not None and data["intent"] == "order"
    assert [i.problem for i in issues if "intent" in i.problem]
    data, issues = parse_resource(raw, "prefetch:medicationRequests")
    assert data is None and "intent" in issues[0].problem


def sandbox_order(**changes):
    """The sandbox's draft order as it sends it (cds-hooks/sandbox createFhirResource, R4 server)."""
    base = {"resourceType": "MedicationRequest", "id": "request-123", "status": "draft",
            "subject": {"reference": "Patient/pt1"}, "authoredOn": "2026-11-20"}
    base.update(changes)
    return base


ROUTE = {"coding": [{"system": "http://snomed.info/sct", "code": "72607000"}]}


@pytest.mark.parametrize("validation", MODES)
def test_an_object_where_r4_wants_a_list_is_read_as_a_one_item_list(validation):
    raw = sandbox_order(intent="order", dosageInstruction={"route": ROUTE},
                        medicationCodeableConcept={"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "892582"}]})
    data, issues = parse_resource(raw, "draftOrders", validation=validation)
    assert data is not None and data["dosageInstruction"][0]["route"] == ROUTE
    assert [i.skipped for i in issues] == [False] and "single object read as a list: dosageInstruction" in issues[0].problem
    assert isinstance(raw["dosageInstruction"], dict), "the caller's JSON is not changed"


def test_an_object_where_r4_wants_a_list_in_an_unread_element_is_repaired_by_strict_validation():
    category = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category", "code": "community"}]}
    raw = sandbox_order(intent="order", category=category,
                        medicationCodeableConcept={"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "892582"}]})
    data, issues = parse_resource(raw, "draftOrders", validation="strict")
    assert data is not None and data["category"][0]["coding"][0]["code"] == "community"
    assert [i.skipped for i in issues] == [False] and "single object read as a list: category" in issues[0].problem


@pytest.mark.parametrize("validation", MODES)
def test_a_list_element_holding_a_string_is_still_refused(validation):
    data, issues = parse_resource(sandbox_order(intent="order", dosageInstruction="intrathecal",
                                                medicationCodeableConcept={"text": "x"}), "draftOrders", validation=validation)
    assert data is None and issues[0].skipped and "dosageInstruction" in issues[0].problem
    data, issues = parse_resource(sandbox_order(intent="order", category="community",
                                                medicationCodeableConcept={"text": "x"}), "draftOrders", validation="strict")
    assert data is None and issues[0].skipped


@pytest.mark.parametrize("validation", MODES)
def test_a_draft_drug_order_without_a_drug_is_read_as_an_unnamed_drug(validation):
    data, issues = parse_resource(sandbox_order(), "draftOrders", validation=validation)
    assert data is not None and data["medicationCodeableConcept"] == {"text": "no medication named in the draft order"}
    assert data["intent"] == "order" and [i.skipped for i in issues] == [False]
    # outside the orders being signed the same resource is simply invalid
    data, issues = parse_resource(sandbox_order(intent="order"), "prefetch:orders", validation=validation)
    assert data is None and issues[0].skipped
