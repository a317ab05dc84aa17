"""OpenAPI 3.1 description of the HTTP API, generated from the same JSON Schemas the service enforces."""
from __future__ import annotations

import copy
import json
from typing import Any

from flask import Blueprint, Response, jsonify

from .. import __version__
from ..cdshooks.validation import load_schema
from .common import runtime

bp = Blueprint("openapi", __name__)

_OUTCOME = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"type": "string"},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                    "expression": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


def _hoist(name: str, components: dict[str, Any]) -> dict[str, str]:
    """Put a repo schema into components, moving its $defs beside it and rewriting refs."""
    schema = copy.deepcopy(load_schema(name))
    prefix = "".join(part.capitalize() for part in name.split("-"))
    defs = schema.pop("$defs", {})
    schema.pop("$schema", None)
    schema.pop("$id", None)
    text = json.dumps({"root": schema, "defs": defs})
    text = text.replace('"#/$defs/', f'"#/components/schemas/{prefix}_')
    moved = json.loads(text)
    components[prefix] = moved["root"]
    for key, value in moved["defs"].items():
        components[f"{prefix}_{key}"] = value
    return {"$ref": f"#/components/schemas/{prefix}"}


def _docs_paths(outcome: dict[str, Any]) -> dict[str, Any]:
    """The documentation pages cards link to: HTML by default, JSON with Accept: application/json."""
    page = {"type": "object"}

    def ok(what: str) -> dict[str, Any]:
        return {"description": what, "content": {"text/html": {"schema": {"type": "string"}},
                                                 "application/json": {"schema": page}}}

    def missing(what: str) -> dict[str, Any]:
        return {"description": what, "content": {"application/json": {"schema": outcome},
                                                 "text/html": {"schema": {"type": "string"}}}}

    def param(name: str, text: str) -> dict[str, Any]:
        return {"name": name, "in": "path", "required": True, "description": text,
                "schema": {"type": "string", "minLength": 1, "maxLength": 64}}

    return {
        "/docs/codes": {"get": {"summary": "Codes with a documentation page", "operationId": "docsCodes",
                                "responses": {"200": ok("Index of codes")}}},
        "/docs/codes/{code}": {"get": {
            "summary": "What to document for a code", "operationId": "docsCode",
            "parameters": [param("code", "CPT or HCPCS code, e.g. 62370")],
            "responses": {"200": ok("The code's documentation checklist"), "404": missing("Unknown code")}}},
        "/docs/rules": {"get": {"summary": "Coding rules", "operationId": "docsRules",
                                "responses": {"200": ok("Index of rules")}}},
        "/docs/rules/{rule_id}": {"get": {
            "summary": "One coding rule: version, dates, verification, source, data", "operationId": "docsRule",
            "parameters": [param("rule_id", "Rule id, e.g. SEL-MATRIX")],
            "responses": {"200": ok("The rule's page"), "404": missing("Unknown rule")}}},
    }


def build_openapi(base_url: str, service_ids: list[str]) -> dict[str, Any]:
    components: dict[str, Any] = {"OperationOutcome": _OUTCOME}
    request_ref = _hoist("request", components)
    response_ref = _hoist("response", components)
    feedback_ref = _hoist("feedback", components)
    discovery_ref = _hoist("discovery", components)
    outcome = {"$ref": "#/components/schemas/OperationOutcome"}

    def errors(*codes: int) -> dict[str, Any]:
        text = {
            400: "Invalid request; the OperationOutcome names the field",
            401: "Missing or invalid client JWT; issue[0].details.coding names the class of failure "
                 "(system http://pumpcds.org/fhir/CodeSystem/auth-failure; docs/security.md)",
            404: "Unknown service id",
            412: "Data the service needs could not be had from prefetch or the FHIR server",
            413: "Request body or prefetch too large",
            503: "Client authentication could not be checked (token replay store unavailable); retry",
        }
        return {
            str(c): {"description": text[c], "content": {"application/json": {"schema": outcome}}} for c in codes
        }

    secured: list[dict[str, list[str]]] = [{"cdsHooksJwt": []}]
    service_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": service_ids},
        "description": "Service id from discovery",
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pumpcds CDS Hooks service",
            "version": __version__,
            "description": "CDS Hooks 2.0 services that check the coding of implanted drug-pump visits.",
        },
        "servers": [{"url": base_url}],
        "paths": {
            "/cds-services": {
                "get": {
                    "summary": "Discovery",
                    "operationId": "discovery",
                    "responses": {
                        "200": {
                            "description": "The services",
                            "content": {"application/json": {"schema": discovery_ref}},
                        },
                        **errors(401, 503),
                    },
                    "security": secured,
                }
            },
            "/cds-services/{id}": {
                "post": {
                    "summary": "Call a service",
                    "operationId": "callService",
                    "parameters": [service_id],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": request_ref}}},
                    "responses": {
                        "200": {"description": "Cards", "content": {"application/json": {"schema": response_ref}}},
                        **errors(400, 401, 404, 412, 413, 503),
                    },
                    "security": secured,
                }
            },
            "/cds-services/{id}/feedback": {
                "post": {
                    "summary": "Feedback on cards",
                    "operationId": "feedback",
                    "parameters": [service_id],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": feedback_ref}}},
                    "responses": {
                        "200": {"description": "Feedback stored", "content": {"application/json": {"schema": {"type": "object"}}}},
                        **errors(400, 401, 404, 413),
                        "503": {"description": "Storage or client authentication unavailable; nothing was stored, retry", "content": {"application/json": {"schema": outcome}}},
                    },
                    "security": secured,
                }
            },
            **_docs_paths(outcome),
            "/healthz": {"get": {"summary": "Liveness", "operationId": "healthz", "responses": {"200": {"description": "Alive"}}}},
            "/readyz": {
                "get": {
                    "summary": "Readiness",
                    "operationId": "readyz",
                    "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready"}},
                }
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "cdsHooksJwt": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": (
                        "CDS Hooks 2.0 client JWT (ES384 or RS384, signed by a registered issuer; "
                        "see docs/security.md). Not required in development mode."
                    ),
                }
            },
        },
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    rt = runtime()
    return jsonify(build_openapi(rt.settings.public_base_url, sorted(rt.services)))
