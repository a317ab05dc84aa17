"""JSON Schema checks of requests and feedback; validators are compiled once per process.

Two validators per schema: a compiled one (jsonschema-rs, Rust) answers "valid?" in a few
microseconds, which is every well-formed call; only when it says no does the Python validator
(jsonschema) walk the document to name the field at fault, so the 400's message is the same
as ever. The Python validator has the last word: a document it accepts is accepted.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from ..errors import ApiError
from .services import HookSpec, ServiceDefinition

SCHEMA_NAMES = (
    "request",
    "context-order-sign",
    "context-encounter",
    "feedback",
    "response",
    "discovery",
)


@cache
def load_schema(name: str) -> dict[str, Any]:
    text = resources.files("service.cdshooks").joinpath("schemas", f"{name}.schema.json").read_text()
    return json.loads(text)


@cache
def validator(name: str) -> Draft202012Validator:
    """The Python validator: slow, but its errors say exactly where and why."""
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


@cache
def compiled(name: str) -> Any:
    """The compiled validator for the fast yes (formats checked too: it is never laxer than the Python one)."""
    return jsonschema_rs.validator_for(load_schema(name), validate_formats=True)


def _path(prefix: str, error: ValidationError) -> str:
    parts = [prefix] if prefix else []
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else str(p))
    return ".".join(parts).replace(".[", "[") or "(body)"


def _describe(error: ValidationError, prefix: str) -> tuple[str, str]:
    """Turn a jsonschema error into (field, message) a client developer can act on."""
    where = _path(prefix, error)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        field_name = f"{where}.{missing}" if where != "(body)" else missing
        return field_name, f"missing required field '{field_name}'"
    if error.validator == "dependentRequired":
        need = error.message.split("'")[1] if "'" in error.message else "fhirServer"
        return need if where == "(body)" else f"{where}.{need}", (
            f"'{need}' is required when {error.message.split(' is a dependency of ')[-1]} is present"
        )
    if error.validator == "type" and error.instance is None:
        # CDS Hooks 2.0: elements SHALL NOT be null; an optional one without a value is left out
        return where, f"'{where}' is null; leave it out when there is no value, or send a {error.validator_value}"
    if error.validator == "type":
        return where, f"'{where}' must be of type {error.validator_value}, got {type(error.instance).__name__}"
    if error.validator == "minLength" and error.instance == "":
        return where, f"'{where}' is empty; it needs a value"
    if error.validator in {"pattern", "const", "enum", "format"}:
        shown = json.dumps(error.instance)[:80]
        expected = error.schema.get("description") or error.message.split(" is not ")[-1][:120]
        return where, f"'{where}' has an invalid value {shown}; expected {expected}"
    return where, f"'{where}': {error.message[:200]}"


def first_error(name: str, instance: Any, prefix: str = "") -> tuple[str, str] | None:
    if compiled(name).is_valid(instance):
        return None
    errors = sorted(validator(name).iter_errors(instance), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return None
    return _describe(errors[0], prefix)


@dataclass(frozen=True)
class HookRequest:
    """A request that passed every check; the rest of the pipeline trusts its shape."""

    service: ServiceDefinition
    hook: str
    hook_instance: str
    context: dict[str, Any]
    prefetch: dict[str, Any] | None
    fhir_server: str | None
    access_token: str | None = field(default=None, repr=False)

    @property
    def spec(self) -> HookSpec:
        return self.service.spec


def check_request(service: ServiceDefinition, body: Any) -> HookRequest:
    """Validate the envelope, the hook and its context; raise ApiError(400) naming the field."""
    if not isinstance(body, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(body).__name__}")
    problem = first_error("request", body)
    if problem:
        raise ApiError(400, problem[1], problem[0])
    hook = body["hook"]
    if hook != service.hook:
        raise ApiError(400, f"hook '{hook}' does not match service '{service.id}', which serves {service.hook}", "hook")
    problem = first_error(service.spec.context_schema, body["context"], "context")
    if problem:
        raise ApiError(400, problem[1], problem[0])
    auth = body.get("fhirAuthorization") or {}
    return HookRequest(
        service=service,
        hook=hook,
        hook_instance=body["hookInstance"],
        context=body["context"],
        prefetch=body.get("prefetch"),
        fhir_server=body.get("fhirServer"),
        access_token=auth.get("access_token"),
    )


def check_feedback(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        raise ApiError(400, f"feedback body must be a JSON object, got {type(body).__name__}")
    problem = first_error("feedback", body)
    if problem:
        raise ApiError(400, problem[1], problem[0])
    for i, item in enumerate(body["feedback"]):
        if not _in_utc_range(item["outcomeTimestamp"]):
            where = f"feedback[{i}].outcomeTimestamp"
            raise ApiError(400, f"'{where}' lies outside the years 1-9999 once converted to UTC", where)
    return body["feedback"]


def _in_utc_range(stamp: str) -> bool:
    """False for an RFC 3339 time that has no UTC equivalent (e.g. 0001-01-01T00:00:00+01:00)."""
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return True  # valid RFC 3339 (the schema checked) that Python does not read, e.g. a leap second
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        return False
    return True


def warm_up() -> None:
    """Build every validator at start-up so no request pays for it."""
    for name in SCHEMA_NAMES:
        validator(name)
        compiled(name)
