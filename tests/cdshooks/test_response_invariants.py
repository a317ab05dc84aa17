"""Each invariant of service.cdshooks.response is caught with a message naming the place."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from service.cdshooks.response import assert_response, check_response
from service.cdshooks.validation import validator


def good() -> dict[str, Any]:
    return {
        "cards": [
            {
                "uuid": "c1",
                "summary": "Code 62369 for this visit, not 95990",
                "indicator": "critical",
                "source": {"label": "pumpcds coding rules"},
                "selectionBehavior": "at-most-one",
                "overrideReasons": [{"system": "http://pumpcds.org/fhir/CodeSystem/override-reason",
                                     "code": "clinical-judgement", "display": "Clinical judgement"}],
                "suggestions": [
                    {"uuid": "s1", "label": "Use 62369", "isRecommended": True, "actions": [
                        {"type": "update", "description": "Replace 95990",
                         "resource": {"resourceType": "ServiceRequest", "id": "sr1"}},
                        {"type": "delete", "description": "Remove the duplicate order",
                         "resourceId": "ServiceRequest/sr2"},
                    ]}
                ],
                "links": [{"label": "What to document for 62369", "url": "https://x.org/docs/codes/62369",
                           "type": "absolute"}],
            }
        ]
    }


def test_good_body_has_no_problems() -> None:
    assert check_response(good()) == []
    assert_response(good())
    assert check_response({"cards": []}) == []


def _mutated(fn) -> list[str]:
    body = copy.deepcopy(good())
    fn(body)
    return check_response(body)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda b: b["cards"][0].update(summary="x" * 140), "cards/0/summary: 140 characters"),
        (lambda b: b["cards"][0].pop("selectionBehavior"), "cards/0: suggestions without selectionBehavior"),
        (lambda b: b["cards"][0]["overrideReasons"][0].pop("display"), "override reason without display"),
        (lambda b: b["cards"][0]["links"][0].update(appContext="{}"), "appContext on a 'absolute' link"),
        (lambda b: b["cards"][0].update(detail=None), "/cards/0/detail: null value"),
        (lambda b: b["cards"][0].update(detail="  "), "/cards/0/detail: empty string"),
        (lambda b: b["cards"][0].update(links=[]), "/cards/0/links: empty list"),
        (lambda b: b["cards"][0]["source"].update(topic={}), "/cards/0/source/topic: empty object"),
        (lambda b: b["cards"][0].pop("uuid"), "cards/0: card without uuid"),
        (lambda b: b["cards"][0]["suggestions"][0].pop("uuid"), "suggestions/0: suggestion without uuid"),
        (lambda b: b["cards"][0]["suggestions"][0].update(uuid="c1"), "duplicate uuid c1"),
        (lambda b: b["cards"][0]["suggestions"][0]["actions"][1].pop("resourceId"), "delete action without resourceId"),
        (lambda b: b["cards"][0]["suggestions"][0]["actions"][0].pop("resource"), "update action without a resource"),
        (lambda b: b["cards"][0]["suggestions"].append({"uuid": "s2", "label": "Or this", "isRecommended": True}),
         "cards/0: 2 suggestions isRecommended under at-most-one"),
    ],
)
def test_each_broken_invariant_is_named(mutate, expected: str) -> None:
    problems = _mutated(mutate)
    assert any(expected in p for p in problems), problems


def test_assert_response_raises_with_schema_problem() -> None:
    body = good()
    body["cards"][0]["indicator"] = "urgent"
    with pytest.raises(ValueError, match="indicator"):
        assert_response(body)


def test_the_schema_also_refuses_two_recommended_suggestions_under_at_most_one() -> None:
    body = good()
    body["cards"][0]["suggestions"].append({"uuid": "s2", "label": "Or this", "isRecommended": True})
    errors = [e.message for e in validator("response").iter_errors(body)]
    assert errors == ["Too many items match the given schema (expected at most 1)"]
    body["cards"][0]["selectionBehavior"] = "any"
    assert_response(body)  # several recommended are fine when the clinician may pick any
