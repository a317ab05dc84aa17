from __future__ import annotations

from flask import Blueprint, Response, jsonify

from .common import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: rule data loaded (and, once storage exists, the database answers)."""
    rt = runtime()
    checks = {"services": bool(rt.services), "rules": rt.engine is not None}
    ready = all(checks.values())
    return jsonify({"status": "ready" if ready else "not-ready", "checks": checks}), 200 if ready else 503
