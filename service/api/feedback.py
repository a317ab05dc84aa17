"""PROVISIONAL storage-free feedback (issue 4 adds the audit store)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..cdshooks.validation import check_feedback
from ..errors import ApiError
from .common import json_body, runtime

bp = Blueprint("feedback", __name__)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> tuple[Response, int]:
    if service_id not in runtime().services:
        raise ApiError(404, f"no CDS service with id '{service_id}'; see GET /cds-services", "id")
    items = check_feedback(json_body())
    return jsonify({"received": len(items)}), 200
