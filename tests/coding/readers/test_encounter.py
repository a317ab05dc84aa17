"""Encounter and Condition reader: the visit's diagnoses."""
from __future__ import annotations

import datetime as dt

from service.coding.readers import encounter
from service.coding.readers.scope import Scope

from .conftest import ICD, concept


def test_the_encounters_reasons_and_the_visits_conditions(notes, terms) -> None:
    encounter.read_encounter({"resourceType": "Encounter", "id": "enc1", "reasonCode": [concept(ICD, "Z45.1")]}, notes, terms)
    encounter.read_condition({"resourceType": "Condition", "id": "c", "code": concept(ICD, "G35")}, notes, terms)
    assert notes.diagnoses == [("Z45.1", "Encounter/enc1"), ("G35", "Condition/c")]


def test_a_problem_list_entry_is_not_the_visits_diagnosis_when_an_encounter_is_named() -> None:
    same_day = {"resourceType": "Condition", "id": "c", "recordedDate": "2026-11-20"}
    of_visit = {**same_day, "encounter": {"reference": "Encounter/enc1"}}
    with_encounter, without = Scope("enc1", dt.date(2026, 11, 20)), Scope(None, dt.date(2026, 11, 20))
    assert encounter.condition_in_visit(of_visit, with_encounter)
    assert not encounter.condition_in_visit(same_day, with_encounter)
    assert encounter.condition_in_visit(same_day, without)
    assert not encounter.condition_in_visit({**same_day, "recordedDate": "2026-11-19"}, without)
