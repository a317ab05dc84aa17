"""Observation reader: parameters read or changed, refill volumes, waste, statements, signature."""
from __future__ import annotations

import datetime as dt

import pytest

from service.coding.readers import observation
from service.coding.readers.scope import Scope

from .conftest import ENC, P, concept, observed


def obs(code: str, status: str = "final", **value):
    return {"resourceType": "Observation", "id": code, "status": status, "encounter": ENC,
            "effectiveDateTime": "2026-11-20T10:05:00Z", "code": concept(P, code), **value}


def previous(**value):
    return [{"code": concept(P, "previous-value"), **value}]


@pytest.mark.parametrize("old, new, unit, change", [
    (0.5, 0.55, "mg/d", ("0.5 mg/d", "0.55 mg/d")),
    (2.0, 2.5, "mg/mL", ("2 mg/mL", "2.5 mg/mL")),  # a JSON 2.0 is "2", as the record means it
    ("400", 450, "mcg/d", ("400 mcg/d", "450 mcg/d")),  # a decimal sent as text is still the decimal
    (2, 2.0, "mL", None),  # the same value written twice is no change
])
def test_a_previous_value_that_differs_is_a_change(notes, terms, old, new, unit, change) -> None:
    observation.read(obs("daily-dose", valueQuantity={"value": new, "unit": unit},
                         component=previous(valueQuantity={"value": old, "unit": unit})), notes, terms)
    if change is None:
        assert notes.changes == [] and notes.readings == {"daily-dose"}
    else:
        assert [(c.old, c.new) for c in notes.changes] == [change]
        assert observed(notes, "reprogramming") == [f"daily dose changed from {change[0]} to {change[1]}"]


def test_a_concentration_reading_gives_mg_per_ml(notes, terms) -> None:
    observation.read(obs("concentration", valueQuantity={"value": 500, "unit": "mcg/mL", "code": "ug/mL"}), notes, terms)
    assert notes.concentration == (pytest.approx(0.5), "mg")


def test_refill_volumes_and_waste(notes, terms) -> None:
    observation.read(obs("volume-instilled", valueQuantity={"value": 20.0, "unit": "mL"}), notes, terms)
    observation.read(obs("drug-wasted", valueQuantity={"value": 1.5, "unit": "mg"}), notes, terms)
    assert notes.activities == {"refill"} and observed(notes, "refill") == ["volume instilled: 20 mL"]
    assert notes.wasted is not None and notes.wasted.value == 1.5 and observed(notes, "waste") == ["drug discarded: 1.5 mg"]
    assert "doc-waste-amount" in notes.documented


@pytest.mark.parametrize("value, expected", [(True, True), ("false", False), ("yes", True), ("maybe", None), (None, None)])
def test_single_dose_container_is_a_boolean(notes, terms, value, expected) -> None:
    observation.read(obs("container-single-dose", **({} if value is None else {"valueBoolean": value})), notes, terms)
    assert notes.single_dose is expected


@pytest.mark.parametrize("value, documented", [({"valueBoolean": True}, True), ({"valueBoolean": False}, False),
                                               ({"valueInteger": 0}, False), ({"valueString": "scanned"}, True), ({}, False)])
def test_a_documentation_statement_counts_when_it_states_something(notes, terms, value, documented) -> None:
    observation.read(obs("doc-post-change-verification", **value), notes, terms)
    assert ("doc-post-change-verification" in notes.documented) is documented


def test_signature_statement_and_unattested_results(notes, terms) -> None:
    observation.read(obs("doc-performer-signature", valueBoolean=False), notes, terms)
    observation.read(obs("reservoir-volume", status="preliminary", valueQuantity={"value": 3, "unit": "mL"}), notes, terms)
    assert not notes.signed and notes.unsigned == ["Observation/doc-performer-signature", "Observation/reservoir-volume"]
    assert observed(notes, "signature")[1] == "reservoir volume recorded but not signed off (preliminary)"


def test_the_next_refill_date_reads_as_a_date(notes, terms) -> None:
    observation.read(obs("next-refill-date", valueDateTime="2027-01-15T09:00:00Z",
                         component=previous(valueDateTime="2027-01-02")), notes, terms)
    assert [(c.old, c.new) for c in notes.changes] == [("2027-01-02", "2027-01-15")]


def test_observations_of_other_codes_are_not_read(notes, terms) -> None:
    observation.read({**obs("x"), "code": concept("http://loinc.org", "85354-9"), "valueString": "132/84"}, notes, terms)
    assert notes == type(notes)()


def test_scope_counts_active_results_of_the_visit() -> None:
    scope = Scope(None, dt.date(2026, 11, 20))
    assert observation.in_visit(obs("daily-dose"), scope)
    assert not observation.in_visit(obs("daily-dose", status="cancelled"), scope)
    assert observation.in_visit({**obs("daily-dose"), "encounter": None, "effectiveDateTime": None,
                                 "issued": "2026-11-20T12:00:00Z"}, scope)
