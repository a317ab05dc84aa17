"""Documentation pages the cards link to (issue 4): /docs/codes[/<code>], /docs/rules[/<id>].

HTML by default, JSON when the client prefers application/json; rendering is in
service/cdshooks/docpages.py, built once when the blueprint is registered (at start-up).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState

from ..cdshooks.cardtemplates import cards_dir
from ..cdshooks.docpages import DocPages
from ..errors import ApiError

bp = Blueprint("docs", __name__)
EXTENSION = "pumpcds.docs"


@bp.record_once
def _load(state: BlueprintSetupState) -> None:
    runtime = state.app.extensions["pumpcds"]
    settings = runtime.settings
    rules = runtime.engine.rules
    state.app.extensions[EXTENSION] = DocPages.load(cards_dir(settings), rules.book, rules.codes,
                                                    settings.public_base_url, rules.on_test_data)


def _pages() -> DocPages:
    return current_app.extensions[EXTENSION]


def _prefers(first: str, second: str) -> bool:
    accept = request.accept_mimetypes
    return accept.quality(first) > accept.quality(second)


def _answer(page: str, data: dict[str, Any]) -> Response:
    if _prefers("application/json", "text/html"):
        return jsonify(data)
    return Response(_pages().html(page, data), mimetype="text/html")


def _not_found(message: str) -> Any:
    """A browser asking for HTML gets a page; every other client the service's OperationOutcome."""
    if _prefers("text/html", "application/json"):
        return Response(_pages().html("error", {"message": message}), status=404, mimetype="text/html")
    raise ApiError(404, message)


@bp.get("/docs/codes")
def codes_index() -> Response:
    return _answer("codes", _pages().codes_index())


@bp.get("/docs/codes/<code>")
def code_page(code: str) -> Any:
    data = _pages().code(code.strip().upper())
    if data is None:
        return _not_found(f"pumpcds has no page for code {code[:20]!r}; the codes it knows are listed at /docs/codes")
    return _answer("code", data)


@bp.get("/docs/rules")
def rules_index() -> Response:
    return _answer("rules", _pages().rules_index())


@bp.get("/docs/rules/<rule_id>")
def rule_page(rule_id: str) -> Any:
    data = _pages().rule(rule_id.strip().upper())
    if data is None:
        return _not_found(f"pumpcds has no rule {rule_id[:40]!r}; the rules are listed at /docs/rules")
    return _answer("rule", data)
