"""The response models refuse, when built, anything that breaks a CDS Hooks 2.0 rule, and what they
serialise passes the response schema and the invariant checker."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from service.cdshooks.models import (
    Action,
    Card,
    CardMark,
    CdsResponse,
    Coding,
    EvidenceRow,
    InvalidResponse,
    Link,
    Source,
    Suggestion,
)
from tests.conftest import response_problems

SR = {"resourceType": "ServiceRequest", "id": "sr1", "status": "draft", "intent": "order",
      "subject": {"reference": "Patient/pt"}}
REASON = Coding("http://pumpcds.org/fhir/CodeSystem/override-reason", "already-corrected", "Already corrected in the chart")


def suggestion(**kw: Any) -> Suggestion:
    return Suggestion(kw.pop("label", "Use 62369"), kw.pop("actions", (Action.update(SR, "Replace 95990"),)), **kw)


def card(**kw: Any) -> Card:
    base: dict[str, Any] = dict(summary="Code 62369 for this visit, not 95990", indicator="warning",
                                source=Source("pumpcds coding rules", "https://cds.example.org/docs/rules/SEL-MATRIX",
                                              Coding("http://pumpcds.org/fhir/CodeSystem/card-topic", "SEL-MATRIX", "Matrix")))
    base.update(kw)
    return Card(**base)


def test_a_full_card_serialises_to_a_conformant_response() -> None:
    c = card(detail="Why: **this**.", override_reasons=(REASON,),
             suggestions=(suggestion(is_recommended=True),
                          suggestion(label="Remove it", actions=(Action.delete("ServiceRequest/sr2", "Remove the order"),))),
             selection_behavior="at-most-one",
             links=(Link("What to document for 62369", "https://cds.example.org/docs/codes/62369"),
                    Link("Open the documentation app", "https://app.example.org/launch", "smart", '{"code": "62369"}')),
             mark=CardMark("SEL-MATRIX", "2", "replace-code", evidence=(EvidenceRow("code 95990", "ServiceRequest/sr1", "2026-11-20"),),
                           affected=("ServiceRequest/sr1",)))
    body = orjson.loads(CdsResponse((c, card())).to_json())
    assert response_problems(body) == []
    first = body["cards"][0]
    assert list(first) == ["uuid", "summary", "detail", "indicator", "source", "overrideReasons", "extension",
                           "suggestions", "selectionBehavior", "links"]
    assert first["extension"]["pumpcds"] == {
        "ruleId": "SEL-MATRIX", "ruleVersion": "2", "kind": "replace-code",
        "evidence": [{"reference": "ServiceRequest/sr1", "observed": "code 95990", "date": "2026-11-20"}],
        "affected": ["ServiceRequest/sr1"]}
    assert [s.get("isRecommended") for s in first["suggestions"]] == [True, None]
    assert first["suggestions"][1]["actions"] == [{"type": "delete", "description": "Remove the order",
                                                   "resourceId": "ServiceRequest/sr2"}]
    assert body["cards"][1] == {"uuid": body["cards"][1]["uuid"], "summary": "Code 62369 for this visit, not 95990",
                                "indicator": "warning", "source": first["source"]}
    assert CdsResponse().to_json() == b'{"cards":[]}'


BROKEN: dict[str, tuple[Callable[[], object], str]] = {
    "summary of 140 characters": (lambda: card(summary="x" * 140), "fewer than 140"),
    "empty summary": (lambda: card(summary=" "), "Card.summary"),
    "indicator hard-stop": (lambda: card(indicator="hard-stop"), "indicator 'hard-stop'"),
    "no source label": (lambda: card(source=Source("")), "Source.label"),
    "relative source url": (lambda: card(source=Source("x", "/docs/rules/X")), "absolute"),
    "empty detail": (lambda: card(detail=""), "Card.detail"),
    "suggestions without selectionBehavior": (lambda: card(suggestions=(suggestion(),)), "needs a selectionBehavior"),
    "unknown selectionBehavior": (lambda: card(suggestions=(suggestion(),), selection_behavior="all"), "selectionBehavior 'all'"),
    "two recommended under at-most-one": (
        lambda: card(suggestions=(suggestion(is_recommended=True), suggestion(is_recommended=True)),
                     selection_behavior="at-most-one"), "2 suggestions are isRecommended"),
    "a card and a suggestion share a uuid": (
        lambda: card(uuid="u1", suggestions=(suggestion(uuid="u1"),), selection_behavior="any"), "uuid u1 is used twice"),
    "two cards share a uuid": (lambda: CdsResponse((card(uuid="u1"), card(uuid="u1"))), "uuid u1 is used twice"),
    "suggestion without label": (lambda: suggestion(label=""), "Suggestion.label"),
    "override reason without display": (
        lambda: card(override_reasons=(Coding("http://x.org", "c"),)), "override reason 'c' has no display"),
    "action type upper case": (lambda: Action("Update", "d", resource=SR), "action type 'Update'"),
    "action without description": (lambda: Action.update(SR, ""), "Action.description"),
    "delete without resourceId": (lambda: Action("delete", "d"), "resourceId 'Type/id'"),
    "delete of a bare id": (lambda: Action.delete("sr1", "d"), "resourceId 'Type/id'"),
    "delete carrying a resource": (lambda: Action("delete", "d", resource=SR, resource_id="ServiceRequest/sr1"),
                                   "by resourceId only"),
    "create without a resource": (lambda: Action("create", "d"), "needs a resource"),
    "create of a resource without resourceType": (lambda: Action.create({"id": "x"}, "d"), "needs a resource"),
    "update by resourceId": (lambda: Action("update", "d", resource=SR, resource_id="ServiceRequest/sr1"), "not a resourceId"),
    "update of a resource without id": (lambda: Action.update({"resourceType": "ChargeItem"}, "d"), "with its id"),
    "appContext on an absolute link": (lambda: Link("l", "https://x.org", "absolute", "{}"), "only on smart links"),
    "link type other": (lambda: Link("l", "https://x.org", "web"), "link type 'web'"),
    "relative link url": (lambda: Link("l", "docs/codes/62369"), "absolute http(s) URL"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_each_broken_rule_is_refused_when_built(name: str) -> None:
    build, message = BROKEN[name]
    with pytest.raises(InvalidResponse, match=message.replace("(", r"\(").replace(")", r"\)")):
        build()


def test_any_allows_several_recommended_suggestions() -> None:
    c = card(suggestions=(suggestion(is_recommended=True), suggestion(is_recommended=True)), selection_behavior="any")
    assert response_problems(CdsResponse((c,)).as_dict()) == []


def test_recommended_makes_a_copy_with_the_same_uuid() -> None:
    s = suggestion()
    r = s.recommended()
    assert (r.uuid, r.is_recommended, s.is_recommended) == (s.uuid, True, False)
