from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..store.db import StoreUnavailable
from .common import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers (never touches the database, so a DB outage restarts nothing)."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: rule data loaded and the database answers a trivial query with its schema in place."""
    rt = runtime()
    checks: dict[str, bool] = {"services": bool(rt.services), "rules": rt.engine is not None}
    failing: dict[str, str] = {}
    if rt.store is None:
        checks["database"] = False
        failing["database"] = "no database configured"
    else:
        try:
            rt.store.ping()
            checks["database"] = True
        except StoreUnavailable as exc:
            checks["database"] = False
            failing["database"] = f"database did not answer ({exc})"
    for name, ok in checks.items():
        if not ok and name not in failing:
            failing[name] = f"{name} not loaded"
    ready = all(checks.values())
    body: dict[str, object] = {"status": "ready" if ready else "not-ready", "checks": checks}
    if failing:
        body["failing"] = failing
    return jsonify(body), 200 if ready else 503
