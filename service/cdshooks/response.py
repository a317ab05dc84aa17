"""Invariants of a CDS Hooks 2.0 response, checked on a JSON body.

The service's own answers cannot break them (models.py refuses a card that would); this checks any
body, e.g. in tests, with messages that name the place. ``check_response(body)`` returns a list of
precise problems (empty when the body is fine); tests/conftest.py runs it on every 200 hook answer. ``assert_response(body)`` raises
``ValueError`` with all problems, for callers that want an exception.
"""
from __future__ import annotations

from typing import Any

from .validation import validator


def _empty_values(value: Any, path: str, out: list[str]) -> None:
    """Report null, empty strings, empty lists and empty objects anywhere in the body."""
    if value is None:
        out.append(f"{path}: null value")
    elif isinstance(value, str):
        if not value.strip():
            out.append(f"{path}: empty string")
    elif isinstance(value, dict):
        if not value:
            out.append(f"{path}: empty object")
        for key, item in value.items():
            _empty_values(item, f"{path}/{key}", out)
    elif isinstance(value, list):
        if not value and path != "/cards":  # "cards": [] is how a service says "nothing to add"
            out.append(f"{path}: empty list")
        for i, item in enumerate(value):
            _empty_values(item, f"{path}/{i}", out)


def _check_action(action: Any, path: str, out: list[str]) -> None:
    if not isinstance(action, dict):
        out.append(f"{path}: action is not an object")
        return
    kind = action.get("type")
    if kind == "delete":
        if not action.get("resourceId"):
            out.append(f"{path}: delete action without resourceId")
    elif kind in ("create", "update"):
        resource = action.get("resource")
        if not isinstance(resource, dict) or not resource.get("resourceType"):
            out.append(f"{path}: {kind} action without a resource")
    else:
        out.append(f"{path}: unknown action type {kind!r}")


def _unique_uuid(item: dict[str, Any], path: str, what: str, seen: set[str], out: list[str]) -> None:
    """Cards and suggestions share one uuid space: feedback names either by uuid alone."""
    uid = item.get("uuid")
    if not uid:
        out.append(f"{path}: {what} without uuid")
    elif uid in seen:
        out.append(f"{path}: duplicate uuid {uid}")
    else:
        seen.add(uid)


def check_response(body: Any) -> list[str]:
    """All invariant problems of a response body (schema problems are reported by the schema)."""
    out: list[str] = []
    if not isinstance(body, dict):
        return ["body: response is not a JSON object"]
    _empty_values(body, "", out)
    seen: set[str] = set()
    cards = body.get("cards")
    if not isinstance(cards, list):
        out.append("cards: missing or not a list")
        cards = []
    for ci, card in enumerate(cards):
        p = f"cards/{ci}"
        if not isinstance(card, dict):
            out.append(f"{p}: card is not an object")
            continue
        _unique_uuid(card, p, "card", seen, out)
        summary = card.get("summary")
        if isinstance(summary, str) and len(summary) >= 140:
            out.append(f"{p}/summary: {len(summary)} characters, must be fewer than 140")
        suggestions = card.get("suggestions") or []
        if suggestions and not card.get("selectionBehavior"):
            out.append(f"{p}: suggestions without selectionBehavior")
        recommended = sum(1 for s in suggestions if isinstance(s, dict) and s.get("isRecommended") is True)
        if card.get("selectionBehavior") == "at-most-one" and recommended > 1:
            out.append(f"{p}: {recommended} suggestions isRecommended under at-most-one (at most 1)")
        for si, sug in enumerate(suggestions):
            sp = f"{p}/suggestions/{si}"
            if not isinstance(sug, dict):
                out.append(f"{sp}: suggestion is not an object")
                continue
            _unique_uuid(sug, sp, "suggestion", seen, out)
            for ai, action in enumerate(sug.get("actions") or []):
                _check_action(action, f"{sp}/actions/{ai}", out)
        for ri, reason in enumerate(card.get("overrideReasons") or []):
            if not isinstance(reason, dict) or not reason.get("display"):
                out.append(f"{p}/overrideReasons/{ri}: override reason without display")
        for li, link in enumerate(card.get("links") or []):
            if isinstance(link, dict) and "appContext" in link and link.get("type") != "smart":
                out.append(f"{p}/links/{li}: appContext on a {link.get('type')!r} link (only smart links)")
    for ai, action in enumerate(body.get("systemActions") or []):
        _check_action(action, f"systemActions/{ai}", out)
    return out


def assert_response(body: Any) -> None:
    """Raise ValueError naming every schema and invariant problem of a response body."""
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator("response").iter_errors(body)]
    problems += [p for p in check_response(body) if p not in problems]
    if problems:
        raise ValueError("invalid CDS Hooks response: " + "; ".join(problems))
