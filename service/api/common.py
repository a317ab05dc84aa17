"""JSON in and out: request-body reading shared by the POST endpoints, and the orjson provider
every JSON answer (`jsonify`, error handlers included) is written with."""
from __future__ import annotations

from typing import Any

import orjson
from flask import Response, current_app, request
from flask.json.provider import DefaultJSONProvider, _default

from ..errors import ApiError
from ..jsondepth import text_deeper_than, too_deep
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
    limit = runtime().settings.max_json_depth
    where = too_deep(body, limit) if text_deeper_than(raw, limit) is not False else None
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


_DUMP_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME  # dates as Flask writes them


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON provider on orjson: same output for what the service sends (dates as HTTP dates,
    dataclasses as objects), written in one C call; values orjson cannot take (integers past 64 bits)
    fall back to the standard library."""

    sort_keys = False  # keys in the order the service wrote them

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return self.dump_bytes(obj).decode() if not kwargs else super().dumps(obj, **kwargs)

    def dump_bytes(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=_default, option=_DUMP_OPTIONS)
        except TypeError:
            return super().dumps(obj).encode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        return Response(self.dump_bytes(self._prepare_response_obj(args, kwargs)), mimetype=self.mimetype)


def json_response(body: bytes, status: int = 200) -> Response:
    """An answer whose JSON was serialised already (a hook's `CdsResponse.to_json()`)."""
    return Response(body, status=status, mimetype="application/json")
