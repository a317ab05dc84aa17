"""`POST /cds-services/{id}/feedback`: store every item, flag cards this service never issued.

The spec defines no response body (a 200 or 204 is enough); the answer is an empty JSON object.
Storing is all or nothing: if the database cannot take the items, nothing was stored and the
client gets a 503 OperationOutcome with Retry-After so it sends them again.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from flask.sansio.blueprints import BlueprintSetupState

from ..cdshooks.cards import OVERRIDE_SYSTEM, override_reasons
from ..cdshooks.validation import check_feedback
from ..errors import ApiError
from ..metrics import CardRuleResolver, record_feedback
from ..store.db import StoreUnavailable
from .common import json_body, runtime

log = logging.getLogger("pumpcds.feedback")

bp = Blueprint("feedback", __name__)

RETRY_AFTER_S = 30
AUDIT_CATCH_UP_S = 0.5


@bp.record
def _register(state: BlueprintSetupState) -> None:
    """How cards map to rules for the feedback metrics: the audit store, unless a test installs another."""
    app = state.app
    store = app.extensions["pumpcds"].store
    if store is not None:
        app.extensions["pumpcds.card_rule_resolver"] = store.rule_of_card


def _unavailable() -> tuple[Response, int]:
    err = ApiError(503, "feedback could not be stored now; nothing was stored, send it again later")
    resp = jsonify(err.body())
    resp.headers["Retry-After"] = str(RETRY_AFTER_S)
    return resp, 503


def _record_metrics(service_id: str, rows: list[dict[str, Any]], own_resolver: CardRuleResolver) -> None:
    """One count per item, by the rule stored with it; a resolver installed in place of the store's
    (``app.extensions["pumpcds.card_rule_resolver"]``) is asked about cards the audit does not know."""
    resolver = current_app.extensions.get("pumpcds.card_rule_resolver")
    for row in rows:
        rule = row["rule_id"]
        if rule is None and resolver is not None and resolver != own_resolver:
            try:
                rule = resolver(row["card_uuid"])
            except Exception:  # a metrics label is never worth a failed answer
                rule = None
        record_feedback(service_id, rule, row["outcome"])


def with_reason_display(item: dict[str, Any]) -> dict[str, Any]:
    """An override reason sent as a bare code (no display) is stored with our display for it, so the
    report reads in words whatever the EHR sends."""
    override = item.get("overrideReason")
    if not isinstance(override, dict):
        return item
    reason = override.get("reason")
    if not isinstance(reason, dict) or reason.get("display") or reason.get("system") not in (None, OVERRIDE_SYSTEM):
        return item
    known = {r.code: r.display for r in override_reasons()}
    if reason.get("code") not in known:
        return item
    return {**item, "overrideReason": {**override, "reason": {**reason, "system": OVERRIDE_SYSTEM,
                                                              "display": known[reason["code"]]}}}


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> tuple[Response, int]:
    rt = runtime()
    if service_id not in rt.services:
        raise ApiError(404, f"no CDS service with id '{service_id}'; see GET /cds-services", "id")
    items = [with_reason_display(item) for item in check_feedback(json_body())]
    if rt.store is None:
        return _unavailable()
    if rt.audit_queue is not None:
        # the cards of an answer given moments ago may still be on their way to the audit table;
        # wait briefly so the feedback is traced to its rule (no wait when the queue is empty or the database failing)
        rt.audit_queue.catch_up(AUDIT_CATCH_UP_S)
    try:
        rows = rt.store.store_feedback(service_id, items)
    except StoreUnavailable as exc:
        log.error("feedback not stored (%s) service=%s items=%d", exc, service_id, len(items))
        return _unavailable()
    _record_metrics(service_id, rows, rt.store.rule_of_card)
    unknown = sum(1 for row in rows if not row["card_known"])
    if unknown:
        log.info("feedback for %d card(s) this service has no record of, stored and flagged", unknown)
    return jsonify({}), 200
