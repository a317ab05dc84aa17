from __future__ import annotations

from flask import Blueprint, jsonify

from .common import runtime

bp = Blueprint("discovery", __name__)


@bp.get("/cds-services")
def discovery():  # type: ignore[no-untyped-def]
    services = [entry for s in runtime().services.values() for entry in s.discovery_entries()]
    return jsonify({"services": services})
