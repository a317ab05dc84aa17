from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..cdshooks.invoke import invoke
from .common import json_body, runtime

bp = Blueprint("hooks", __name__)


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> tuple[Response, int]:
    rt = runtime()
    if service_id not in rt.services:
        from ..errors import ApiError

        raise ApiError(404, f"no CDS service with id '{service_id}'; see GET /cds-services", "id")
    result = invoke(rt, service_id, json_body())
    return jsonify(result.body), result.status
