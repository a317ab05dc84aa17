"""Request-body reading shared by the POST endpoints."""
from __future__ import annotations

from typing import Any

import orjson
from flask import current_app, request

from ..errors import ApiError
from ..runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["pumpcds"]


def json_body() -> Any:
    """The body as JSON, or a 400 that says what is wrong with it (never Flask's HTML 415)."""
    mimetype = request.mimetype or ""
    if not (mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))):
        raise ApiError(
            400,
            f"Content-Type must be application/json (got {mimetype or 'none'})",
            "Content-Type",
        )
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ApiError(400, "request body is empty; expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc.msg} at character {exc.pos}") from None
