from __future__ import annotations

from flask import Blueprint, Response

from ..cdshooks.invoke import invoke
from ..errors import ApiError
from .common import json_body, json_response, runtime

bp = Blueprint("hooks", __name__)


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    rt = runtime()
    if service_id not in rt.services:
        raise ApiError(404, f"no CDS service with id '{service_id}'; see GET /cds-services", "id")
    result = invoke(rt, service_id, json_body())
    return json_response(result.to_json(), result.status)
