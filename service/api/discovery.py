from __future__ import annotations

from flask import Blueprint, jsonify

from .common import runtime

bp = Blueprint("discovery", __name__)


@bp.get("/cds-services")
def discovery():  # type: ignore[no-untyped-def]
    services = [s.discovery_entry() for s in runtime().services.values()]
    return jsonify({"services": services})
