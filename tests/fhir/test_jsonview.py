"""The typed JSON accessors: never raise on any JSON, and read primitives as the R4 models do."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from service.fhir import jsonview as jv

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(
        ["coding", "code", "system", "display", "text", "reference", "value", "unit", "start", "end",
         "valueQuantity", "valueBoolean", "valueString", "resourceType", "id"]), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_no_accessor_raises_on_any_json(value: Any) -> None:
    jv.obj(value), jv.items(value), jv.text(value), jv.child(value, "code"), jv.codings(value)
    jv.reference(value), jv.reference_id(value), jv.resource_type(value), jv.resource_id(value)
    jv.day(value), jv.first_day(value, "start", "value"), jv.number(value), jv.integer(value), jv.boolean(value)
    jv.quantity(value), jv.plain(jv.value_of(value))
    if isinstance(value, dict):
        jv.ref_of(value)
    for key in jv.VALUE_KEYS:
        jv.plain(jv.Value(key, value))


def _model_reads(**value: Any) -> Any:
    try:
        obs = Observation.model_validate({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, **value})
    except ValidationError:
        return None
    key = next(iter(value))
    got = getattr(obs, key)
    return got.value if key == "valueQuantity" else got


@pytest.mark.parametrize("raw", [2, 2.0, 14.2, "2.50", "1e3", "-0", "0.000001", ".5", "5.", "+2", " 2", True, "132/84", None])
def test_a_decimal_is_read_as_the_models_read_it(raw: Any) -> None:
    model = _model_reads(valueQuantity={"value": raw})
    ours = jv.number(raw)
    assert (ours is None) == (model is None), raw
    if model is not None:
        assert Decimal(str(ours)) == model


@pytest.mark.parametrize("raw", [True, False, "true", "TRUE", "yes", "on", "0", 1, 0, 1.0, "2", 2, "", "maybe"])
def test_a_boolean_is_read_as_the_models_read_it(raw: Any) -> None:
    assert jv.boolean(raw) == _model_reads(valueBoolean=raw), raw


@pytest.mark.parametrize("raw", [5, "5", 5.0, "5.0", " 5", "+5", "05", 5.5, "five", True])
def test_an_integer_is_read_as_the_models_read_it(raw: Any) -> None:
    assert jv.integer(raw) == _model_reads(valueInteger=raw), raw


@pytest.mark.parametrize("value, text", [(2, "2"), (2.0, "2"), (14.2, "14.2"), (3.10, "3.1"), (Decimal("2.50"), "2.5"),
                                         (450, "450"), (100.0, "100"), (1e-7, "0.0000001"), (0.1 + 0.2, "0.30000000000000004")])
def test_numbers_are_written_as_the_record_wrote_them(value: Any, text: str) -> None:
    assert jv.format_number(value) == text


@pytest.mark.parametrize("value, text", [
    (jv.Value("valueQuantity", {"value": 2.0, "unit": "mg/mL"}), "2 mg/mL"),
    (jv.Value("valueQuantity", {"value": "2.50", "code": "mL"}), "2.5 mL"),
    (jv.Value("valueQuantity", {"unit": "mL"}), "? mL"),
    (jv.Value("valueCodeableConcept", {"coding": [{"code": "flex", "display": "Flex mode"}]}), "Flex mode"),
    (jv.Value("valueCodeableConcept", {"text": "continuous"}), "continuous"),
    (jv.Value("valueDateTime", "2027-01-15T10:00:00+02:00"), "2027-01-15"),
    (jv.Value("valueBoolean", True), "True"),
    (jv.Value("valueInteger", "5"), "5"),
    (jv.Value("valueString", "2 mL alarm"), "2 mL alarm"),
    (jv.Value("valueRatio", {"numerator": {"value": 2, "unit": "mg"}, "denominator": {"value": 1, "unit": "mL"}}), "2 mg/1 mL"),
    (None, "?"),
])
def test_plain_text_of_values(value: Any, text: str) -> None:
    assert jv.plain(value) == text


def test_a_single_object_where_a_list_belongs_is_one_item() -> None:
    assert jv.items({"a": 1}) == [{"a": 1}] and jv.items([{"a": 1}, "x", 3]) == [{"a": 1}] and jv.items("x") == []


def test_days_and_references() -> None:
    assert jv.day("2026-11-20T23:30:00-05:00") == dt.date(2026, 11, 20)
    assert jv.day("2026-11") is None and jv.day("2026-02-30") is None and jv.day(20261120) is None
    assert jv.first_day({"performedPeriod": {"end": "2026-11-20"}, "issued": "2026-11-19T10:00:00Z"},
                        "performedPeriod", "issued") == dt.date(2026, 11, 19)
    assert jv.reference_id({"reference": "http://ehr/fhir/Encounter/e1/"}) == "e1"
    assert jv.reference_id({"reference": "e1"}) is None and jv.reference_id({"display": "x"}) is None
    assert jv.ref_of({"resourceType": "Procedure"}) == "Procedure"
