from __future__ import annotations

from flask import Blueprint, Response, jsonify

from .common import runtime

bp = Blueprint("discovery", __name__)


@bp.get("/cds-services")
def discovery() -> Response:
    services = [s.discovery_entry() for s in runtime().services.values()]
    return jsonify({"services": services})
