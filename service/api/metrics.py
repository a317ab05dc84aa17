"""GET /metrics: Prometheus text exposition (ids and counts only, no patient data)."""
from __future__ import annotations

from flask import Blueprint, Response

from .. import metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    return metrics.exposition()
