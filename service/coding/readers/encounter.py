"""Encounter and Condition: the visit's diagnoses (ICD-10-CM), from the encounter's reason and
from the conditions recorded in the visit."""
from __future__ import annotations

from ...fhir.jsonview import JSON, day, items, ref_of
from .notes import VisitNotes
from .scope import Scope
from .terms import Terms


def condition_in_visit(c: JSON, scope: Scope) -> bool:
    """A Condition of this encounter; without an encounter, one recorded that day, and only when
    the call names no encounter (a problem-list entry is not the visit's diagnosis)."""
    encounter = c.get("encounter")
    return scope.holds(encounter, day(c.get("recordedDate"))) and (encounter is not None or scope.encounter_id is None)


def read_condition(c: JSON, notes: VisitNotes, terms: Terms) -> None:
    ref = ref_of(c)
    for system, code, _ in terms.codings(c.get("code")):
        if system == "icd10cm":
            notes.diagnoses.append((code, ref))


def read_encounter(e: JSON, notes: VisitNotes, terms: Terms) -> None:
    ref = ref_of(e)
    for reason in items(e.get("reasonCode")):
        for system, code, _ in terms.codings(reason):
            if system == "icd10cm":
                notes.diagnoses.append((code, ref))
