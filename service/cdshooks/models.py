"""A CDS Hooks 2.0 response as typed values that cannot break the spec's rules.

Every model checks its own invariants when it is built and raises `InvalidResponse` naming the
rule, so a card that would violate the spec never exists; the card builder makes these, the audit
reads them, and the answer is serialised once, at the HTTP edge (`CdsResponse.to_json()`). Plain
frozen dataclasses: building them costs microseconds, not a validation pass.

Rules enforced (CDS Hooks 2.0, and the 3.0 invariants that state 2.0's text as checks):
card `summary` present and under 140 characters; `indicator` info, warning or critical;
`source.label` present; `selectionBehavior` required with suggestions (cds-resp-6) and at most one
`isRecommended` suggestion under `at-most-one` (cds-resp-1); card and suggestion uuids present and
unique in a response; action `type` create, update or delete with a `description` (cds-resp-5),
create/update carrying the resource, delete naming it by `resourceId` and nothing else
(cds-resp-2); `appContext` only on smart links (cds-resp-3); every override reason with a
`display` (cds-resp-4); no empty strings where a value is sent.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from ..uuids import uuid4_str

MAX_SUMMARY = 139  # "under 140 characters"
INDICATORS = frozenset({"info", "warning", "critical"})
SELECTION_BEHAVIORS = frozenset({"at-most-one", "any"})
ACTION_TYPES = frozenset({"create", "update", "delete"})
LINK_TYPES = frozenset({"absolute", "smart"})


class InvalidResponse(ValueError):
    """A response part that would break a CDS Hooks 2.0 rule; raised when it is built."""


def new_uuid() -> str:
    return uuid4_str()


def _text(value: str | None, what: str, *, required: bool = True) -> None:
    if value is None:
        if required:
            raise InvalidResponse(f"{what} is required")
        return
    if not isinstance(value, str) or not value.strip():
        raise InvalidResponse(f"{what} must be a non-empty string, got {value!r}")


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str
    display: str | None = None

    def __post_init__(self) -> None:
        _text(self.system, "Coding.system")
        _text(self.code, "Coding.code")
        _text(self.display, "Coding.display", required=False)

    def as_dict(self) -> dict[str, str]:
        out = {"system": self.system, "code": self.code}
        if self.display is not None:
            out["display"] = self.display
        return out


@dataclass(frozen=True, slots=True)
class Action:
    """One FHIR change: create (the new resource), update (the whole updated resource) or delete
    (by relative reference)."""

    type: str
    description: str
    resource: Mapping[str, Any] | None = None
    resource_id: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ACTION_TYPES:
            raise InvalidResponse(f"action type {self.type!r} is not one of create, update, delete")
        _text(self.description, "Action.description")
        if self.type == "delete":
            parts = (self.resource_id or "").split("/")
            if len(parts) != 2 or not all(parts):
                raise InvalidResponse(f"delete action needs resourceId 'Type/id', got {self.resource_id!r}")
            if self.resource is not None:
                raise InvalidResponse("delete action names its resource by resourceId only")
            return
        if self.resource_id is not None:
            raise InvalidResponse(f"{self.type} action carries the resource, not a resourceId")
        if not isinstance(self.resource, Mapping) or not isinstance(self.resource.get("resourceType"), str):
            raise InvalidResponse(f"{self.type} action needs a resource with a resourceType")
        if self.type == "update" and not self.resource.get("id"):
            raise InvalidResponse("update action needs the whole resource, with its id")

    @classmethod
    def create(cls, resource: Mapping[str, Any], description: str) -> Action:
        return cls("create", description, resource=resource)

    @classmethod
    def update(cls, resource: Mapping[str, Any], description: str) -> Action:
        return cls("update", description, resource=resource)

    @classmethod
    def delete(cls, reference: str, description: str) -> Action:
        return cls("delete", description, resource_id=reference)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.resource is not None:
            out["resource"] = self.resource
        if self.resource_id is not None:
            out["resourceId"] = self.resource_id
        return out


@dataclass(frozen=True, slots=True)
class Suggestion:
    label: str
    actions: tuple[Action, ...] = ()
    is_recommended: bool = False
    uuid: str = field(default_factory=new_uuid)

    def __post_init__(self) -> None:
        _text(self.label, "Suggestion.label")
        _text(self.uuid, "Suggestion.uuid")

    def recommended(self) -> Suggestion:
        return replace(self, is_recommended=True)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uuid": self.uuid, "label": self.label}
        if self.actions:
            out["actions"] = [a.as_dict() for a in self.actions]
        if self.is_recommended:
            out["isRecommended"] = True
        return out


_SPACE = re.compile(r"\s")


def _absolute(url: str, what: str) -> None:
    _text(url, what)
    if not url.startswith(("http://", "https://")) or _SPACE.search(url):
        raise InvalidResponse(f"{what} must be an absolute http(s) URL, got {url!r}")


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str
    type: str = "absolute"
    app_context: str | None = None

    def __post_init__(self) -> None:
        _text(self.label, "Link.label")
        _absolute(self.url, "Link.url")
        if self.type not in LINK_TYPES:
            raise InvalidResponse(f"link type {self.type!r} is not absolute or smart")
        _text(self.app_context, "Link.appContext", required=False)
        if self.app_context is not None and self.type != "smart":
            raise InvalidResponse("appContext only on smart links")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "url": self.url, "type": self.type}
        if self.app_context is not None:
            out["appContext"] = self.app_context
        return out


@dataclass(frozen=True, slots=True)
class Source:
    label: str
    url: str | None = None
    topic: Coding | None = None

    def __post_init__(self) -> None:
        _text(self.label, "Source.label")
        if self.url is not None:
            _absolute(self.url, "Source.url")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label}
        if self.url is not None:
            out["url"] = self.url
        if self.topic is not None:
            out["topic"] = self.topic.as_dict()
        return out


@dataclass(frozen=True, slots=True)
class EvidenceRow:
    """The resource behind one row of a card's evidence, for coders (never shown in the text)."""

    observed: str
    reference: str | None = None
    date: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {}
        if self.reference:
            out["reference"] = self.reference
        out["observed"] = self.observed
        if self.date:
            out["date"] = self.date
        return out


@dataclass(frozen=True, slots=True)
class CardMark:
    """`extension.pumpcds` of a card: the rule (and version) that made it, which the audit stores
    so feedback traces to the rule, and the resource ids behind its evidence."""

    rule_id: str
    rule_version: str
    kind: str
    evidence: tuple[EvidenceRow, ...] = ()
    missing: tuple[str, ...] = ()
    affected: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ruleId": self.rule_id, "ruleVersion": self.rule_version, "kind": self.kind}
        if self.evidence:
            out["evidence"] = [e.as_dict() for e in self.evidence]
        if self.missing:
            out["missing"] = list(self.missing)
        if self.affected:
            out["affected"] = list(self.affected)
        return out


@dataclass(frozen=True, slots=True)
class Card:
    summary: str
    indicator: str
    source: Source
    detail: str | None = None
    suggestions: tuple[Suggestion, ...] = ()
    selection_behavior: str | None = None
    override_reasons: tuple[Coding, ...] = ()
    links: tuple[Link, ...] = ()
    mark: CardMark | None = None
    uuid: str = field(default_factory=new_uuid)

    def __post_init__(self) -> None:
        _text(self.uuid, "Card.uuid")
        _text(self.summary, "Card.summary")
        if len(self.summary) > MAX_SUMMARY:
            raise InvalidResponse(f"summary has {len(self.summary)} characters, must be fewer than 140")
        if self.indicator not in INDICATORS:
            raise InvalidResponse(f"indicator {self.indicator!r} is not info, warning or critical")
        _text(self.detail, "Card.detail", required=False)
        if self.selection_behavior is not None and self.selection_behavior not in SELECTION_BEHAVIORS:
            raise InvalidResponse(f"selectionBehavior {self.selection_behavior!r} is not at-most-one or any")
        if self.suggestions:
            if self.selection_behavior is None:
                raise InvalidResponse("a card with suggestions needs a selectionBehavior")
            recommended = sum(1 for s in self.suggestions if s.is_recommended)
            if self.selection_behavior == "at-most-one" and recommended > 1:
                raise InvalidResponse(f"{recommended} suggestions are isRecommended under at-most-one (at most 1)")
        for reason in self.override_reasons:
            if reason.display is None:
                raise InvalidResponse(f"override reason {reason.code!r} has no display")
        _unique([self.uuid, *(s.uuid for s in self.suggestions)])

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uuid": self.uuid, "summary": self.summary}
        if self.detail is not None:
            out["detail"] = self.detail
        out["indicator"] = self.indicator
        out["source"] = self.source.as_dict()
        if self.override_reasons:
            out["overrideReasons"] = [r.as_dict() for r in self.override_reasons]
        if self.mark is not None:
            out["extension"] = {"pumpcds": self.mark.as_dict()}
        if self.suggestions:
            out["suggestions"] = [s.as_dict() for s in self.suggestions]
            out["selectionBehavior"] = self.selection_behavior
        if self.links:
            out["links"] = [link.as_dict() for link in self.links]
        return out


def _unique(uuids: list[str]) -> None:
    """Cards and suggestions share one uuid space: feedback names either by uuid alone."""
    if len(set(uuids)) != len(uuids):
        seen: set[str] = set()
        twice = next(u for u in uuids if u in seen or seen.add(u))  # type: ignore[func-returns-value]
        raise InvalidResponse(f"uuid {twice} is used twice")


@dataclass(frozen=True, slots=True)
class CdsResponse:
    cards: tuple[Card, ...] = ()
    system_actions: tuple[Action, ...] = ()

    def __post_init__(self) -> None:
        _unique([u for c in self.cards for u in (c.uuid, *(s.uuid for s in c.suggestions))])

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cards": [c.as_dict() for c in self.cards]}
        if self.system_actions:
            out["systemActions"] = [a.as_dict() for a in self.system_actions]
        return out

    def to_json(self) -> bytes:
        return orjson.dumps(self.as_dict())


NO_CARDS = CdsResponse()
