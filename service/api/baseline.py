"""Benchmark baseline: a bare endpoint in the same app, for measuring what pumpcds adds.

Registered only when ``benchmark_baseline`` is on (never in production). It goes through the
same WSGI server, Flask app and request hooks (logging, headers, metrics) as a hook call, reads
the request body like a hook does, and answers with a static CDS Hooks response of
``benchmark_baseline_bytes`` bytes, so the difference to a hook call is the service's own work.
"""
from __future__ import annotations

import orjson
from flask import Blueprint, Response, request

from .common import runtime

bp = Blueprint("baseline", __name__)

BASELINE_PATH = "/benchmark/baseline"


def static_body(size: int) -> bytes:
    """A valid, empty-handed CDS Hooks response padded to exactly ``size`` bytes (when size allows)."""
    shell = orjson.dumps({"cards": [], "extension": {"org.pumpcds.benchmark-padding": ""}})
    if size < len(shell):  # too small for the padding field: pad with JSON whitespace instead
        empty = orjson.dumps({"cards": []})
        return empty + b"\n" * max(0, size - len(empty))
    return orjson.dumps({"cards": [], "extension": {"org.pumpcds.benchmark-padding": "x" * (size - len(shell))}})


_cache: dict[int, bytes] = {}


@bp.route(BASELINE_PATH, methods=["GET", "POST"])
def baseline() -> Response:
    request.get_data(cache=False)  # read the body like a hook call does, then ignore it
    size = runtime().settings.benchmark_baseline_bytes
    body = _cache.get(size)
    if body is None:
        body = _cache[size] = static_body(size)
    return Response(body, status=200, mimetype="application/json")
