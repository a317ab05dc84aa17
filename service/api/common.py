"""Request-body reading shared by the POST endpoints."""
from __future__ import annotations

from typing import Any

import orjson
from flask import current_app, request

from ..errors import ApiError
from ..jsondepth import too_deep
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
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth" in exc.msg or "recursion" in exc.msg:  # deeper than the parser's own limit (1,024)
            _too_deep("(body)")
        raise ApiError(400, f"request body is not valid JSON: {exc.msg} at character {exc.pos}") from None
    where = too_deep(body, runtime().settings.max_json_depth)
    if where is not None:
        _too_deep(where)
    return body


def _too_deep(where: str) -> None:
    limit = runtime().settings.max_json_depth
    raise ApiError(
        400,
        f"request body nests more than {limit} levels deep{'' if where == '(body)' else f' (under {where!r})'}; "
        f"this service accepts at most {limit} levels of JSON nesting",
        where,
    )
