"""Request validation: the compiled validator's fast "valid" never lets through what the Python
validator refuses, and a refused request still gets the message naming the field."""
from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.cdshooks.validation import SCHEMA_NAMES, compiled, first_error, validator
from tests.conftest import SAMPLES

SAMPLE_BODIES = [json.loads(p.read_text()) for p in sorted((SAMPLES / "requests").glob("*.json"))]
ODD_VALUES = ["", " ", "x\n", "Practitioner/a\n", "Practitioner/a b", "Patient/1", "pt-1.2", "é",
                            "\u0085", "\u00a0", "\x1c", "http://", "http://x", "https://\u2003x", "http://\x1cx", "http://\x85x",
                            "http://\ufeffx", "BEARER",
                            "Bearer\n", "2026-11-20T15:00:00Z", "2026-11-20T15:00:00Z\n", "x" * 65, "x" * 201]
ODD_TEXT = st.sampled_from(ODD_VALUES)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2) | st.floats(allow_nan=False) | ODD_TEXT | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6) | ODD_TEXT, inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["hook", "hookInstance", "fhirServer", "fhirAuthorization", "context", "prefetch", "extension", "userId",
          "patientId", "encounterId", "draftOrders", "access_token", "token_type", "expires_in", "scope", "subject",
          "feedback", "card", "outcome", "outcomeTimestamp", "acceptedSuggestions", "overrideReason", "resourceType"]


def _python_accepts(name: str, doc: Any) -> bool:
    return next(iter(validator(name).iter_errors(doc)), None) is None


@st.composite
def documents(draw: Any) -> Any:
    """A sample request (or its context) with a few fields replaced by odd values, or odd JSON outright."""
    if draw(st.booleans()):
        return draw(st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=6))
    body = json.loads(json.dumps(draw(st.sampled_from(SAMPLE_BODIES))))
    target = body["context"] if draw(st.booleans()) else body
    for _ in range(draw(st.integers(1, 3))):
        target[draw(st.sampled_from(FIELDS))] = draw(JSON)
    return body


@settings(max_examples=400, deadline=None, database=None)
@given(documents())
def test_the_compiled_validator_never_accepts_what_the_python_one_refuses(doc: Any) -> None:
    for name in ("request", "context-order-sign", "context-encounter", "feedback"):
        for part in (doc, doc.get("context") if isinstance(doc, dict) else None):
            if compiled(name).is_valid(part):
                assert _python_accepts(name, part), (name, part)


def test_each_odd_value_in_each_field_gets_the_same_verdict_from_both() -> None:
    """Regex dialects differ (Python's \\s takes \\x1c and \\x85 for whitespace, ECMA's does not): every
    field of a real request, with every odd value, is judged alike."""
    for body in SAMPLE_BODIES[:2] + SAMPLE_BODIES[-2:]:
        for field in FIELDS:
            for value in ODD_VALUES:
                for into_context in (False, True):
                    doc = json.loads(json.dumps(body))
                    (doc["context"] if into_context else doc)[field] = value
                    for name, part in (("request", doc), ("context-order-sign", doc["context"]),
                                       ("context-encounter", doc["context"]), ("feedback", {"feedback": [doc]})):
                        if compiled(name).is_valid(part):
                            assert _python_accepts(name, part), (name, field, value)


def test_every_sample_passes_both_validators() -> None:
    for body in SAMPLE_BODIES:
        assert compiled("request").is_valid(body) and _python_accepts("request", body)
        schema = "context-order-sign" if body["hook"] == "order-sign" else "context-encounter"
        assert compiled(schema).is_valid(body["context"]) and _python_accepts(schema, body["context"])


def test_a_refused_document_still_names_the_field() -> None:
    body = json.loads(json.dumps(SAMPLE_BODIES[0]))
    body["context"]["patientId"] = "has space"
    assert first_error(f"context-{'order-sign' if body['hook'] == 'order-sign' else 'encounter'}",
                       body["context"], "context") == (
        "context.patientId",
        "'context.patientId' has an invalid value \"has space\"; expected a FHIR logical id (letters, digits, - and ., "
        "at most 64)")


def test_every_schema_compiles() -> None:
    for name in SCHEMA_NAMES:
        assert compiled(name).is_valid({}) in (True, False)
