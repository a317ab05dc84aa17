"""Structured, PHI-free logs: JSON lines, and one summary line per HTTP request.

The per-request line carries only: request id, method, path, service id, hookInstance, status,
latency, rule ids, recommended codes, card/FHIR-call counts, client issuer. Never names, birth
dates, identifiers other than resource ids, note text, JWTs or access tokens: the request body
is never logged, error texts (which can quote request values) are not copied into the line,
exception messages are dropped from tracebacks, and anything shaped like a JWT or a bearer
credential is masked in every message as a last line of defence.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import sys
import time
import traceback
from typing import Any

import orjson
from flask import Flask, Response, g, has_request_context, request

from .uuids import uuid4_hex

REQUEST_LOGGER = "pumpcds.request"

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9._~+/=-]{8,})")
_ACCESS_TOKEN = re.compile(r"(?i)(\"?access_token\"?\s*[:=]\s*\"?)([^\s\"',;}]{4,})")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")

# Structured fields a log record may carry (passed with `extra=`); anything else is dropped.
FIELDS = (
    "request_id",
    "method",
    "path",
    "service",
    "hook_instance",
    "status",
    "latency_ms",
    "rule_ids",
    "codes",
    "cards",
    "fhir_calls",
    "fhir_failures",
    "gate",
    "repairs",
    "client_iss",
    "auth",
)


def scrub(text: str) -> str:
    """Mask JWTs and bearer credentials anywhere in a log message."""
    text = _JWT.sub("[jwt]", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}[redacted]", text)
    return _ACCESS_TOKEN.sub(lambda m: f"{m.group(1)}[redacted]", text)


def safe_id(value: Any) -> str | None:
    """A client-supplied id (hookInstance, request id) if it looks like one; otherwise a marker."""
    if value is None:
        return None
    return value if isinstance(value, str) and _SAFE_ID.match(value) else "invalid"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for name in FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if "request_id" not in entry and has_request_context() and g.get("request_id"):
            entry["request_id"] = g.request_id  # any line logged while serving a request names it
        if record.exc_info and record.exc_info[0] is not None:
            # type and frames only: exception messages can quote patient data
            entry["exc_type"] = record.exc_info[0].__name__
            entry["exc_frames"] = [
                f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(record.exc_info[2])
            ][-12:]
        return orjson.dumps(entry, default=str).decode()


def configure_logging(log_level: str = "INFO") -> None:
    """JSON lines on stderr, unless something (gunicorn config, pytest) already set logging up."""
    level = logging.getLevelName(log_level.upper()) if isinstance(log_level, str) else log_level
    logging.getLogger("pumpcds").setLevel(level if isinstance(level, int) else logging.INFO)
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def request_fields() -> dict[str, Any]:
    """Request id, method and path of the request being served (for `extra=`); empty outside one."""
    if not has_request_context():
        return {}
    return {"request_id": current_request_id(), "method": request.method, "path": request.path[:200]}


def current_request_id() -> str:
    """The id of the request being served: the client's X-Request-ID if it looks like one, else new.
    Set once per request, so every line about it and the answer's header carry the same id."""
    if not g.get("request_id"):
        client_id = safe_id(request.headers.get("X-Request-ID"))
        g.request_id = client_id if client_id not in (None, "invalid") else uuid4_hex()
    return g.request_id


def install_request_logging(app: Flask, audit_sinks: list[Any]) -> None:
    """One JSON line per request, with the PHI-free audit record of hook calls merged in."""
    log = logging.getLogger(REQUEST_LOGGER)

    def _remember(record: dict[str, Any]) -> None:
        if has_request_context():
            g.hook_audit = record

    audit_sinks.append(_remember)

    @app.before_request
    def _start() -> None:
        g.request_started = time.perf_counter()
        current_request_id()

    @app.after_request
    def _log(resp: Response) -> Response:
        started = g.get("request_started")
        request_id = current_request_id()
        resp.headers["X-Request-ID"] = request_id
        if not log.isEnabledFor(logging.INFO):
            return resp
        fields: dict[str, Any] = {
            "request_id": request_id,
            "method": request.method,
            "path": request.path[:200],
            "status": resp.status_code,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
        }
        audit = g.get("hook_audit")
        if audit:
            fields.update(
                service=audit.get("service_id"),
                hook_instance=safe_id(audit.get("hook_instance")),
                rule_ids=list(audit.get("rule_ids") or []),
                codes=list(audit.get("codes_recommended") or []),
                cards=len(audit.get("card_uuids") or []),
                fhir_calls=audit.get("fhir_calls", 0),
                gate=audit.get("gate"),  # the relevance gate's verdict (issue 11)
                repairs=list(audit.get("repairs") or [])[:10],  # element paths only, never values
            )
        elif request.view_args and "service_id" in request.view_args:
            fields["service"] = safe_id(request.view_args["service_id"])
        if g.get("client_iss"):
            fields["client_iss"] = g.client_iss
        if g.get("auth_failure"):
            fields["auth"] = "rejected"
        log.info("request", extra=fields)
        return resp
