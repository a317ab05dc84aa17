"""A small but real FHIR R4 REST server for tests and the demo: metadata, reads, searches.

It serves JSON resources loaded from files or given in code under `base_path` (`/fhir`):
`GET /metadata` (a CapabilityStatement, fhirVersion 4.0.1, built from the same search-parameter
table that does the matching, `fhir_search.py`), `GET /{type}/{id}`, `GET /{type}?...` and
`POST /{type}/_search` (form body, how browser clients such as the CDS Hooks sandbox prefetch),
with paging. Every answer carries CORS headers for any origin and preflights are answered, so a
browser page can use it. Tests can inject faults and read back every request it got.

Routes beyond the REST core are added as `FhirServerFeature`s: a feature registers its routes on
the server's blueprint and describes itself in the CapabilityStatement (e.g. Bulk Data `$export`).
Development only: no authentication, everything in memory.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, request
from flask_cors import CORS
from werkzeug.datastructures import MultiDict
from werkzeug.routing import BaseConverter

from . import fhir_search
from .fhir_search import SearchError

FHIR_VERSION = "4.0.1"
FHIR_JSON = "application/fhir+json"


@dataclass
class Fault:
    status: int | None = None  # answer this HTTP status
    delay_s: float = 0.0  # wait before answering
    body: bytes | None = None  # answer these raw bytes (e.g. invalid JSON)
    redirect_to: str | None = None


@dataclass
class RecordedRequest:
    path: str
    query: dict[str, str]  # query string and form body together; first value of each
    headers: dict[str, str]
    method: str = "GET"


class FhirServerFeature(Protocol):
    """Routes added to the server beyond read/search, e.g. FHIR Bulk Data `$export`."""

    def register(self, blueprint: Blueprint, server: FhirTestServer) -> None:
        """Add routes to `blueprint` (mounted at `server.base_path`); use `server.answer` for replies."""

    def describe(self, rest: dict[str, Any]) -> None:
        """Add what the feature offers to the CapabilityStatement's `rest[0]` (e.g. `operation`)."""


class _TypeConverter(BaseConverter):
    """A resource type name: capitalised letters only, so `$operations` and `metadata` never match."""

    regex = r"[A-Z][A-Za-z]{1,63}"


class _IdConverter(BaseConverter):
    regex = r"[A-Za-z0-9\-\.]{1,64}"  # FHIR id


def outcome(code: str, diagnostics: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]}


@dataclass
class FhirTestServer:
    resources: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 50
    faults: dict[str, Fault] = field(default_factory=dict)  # key: resource type or "Type/id"
    requests: list[RecordedRequest] = field(default_factory=list)
    features: list[FhirServerFeature] = field(default_factory=list)
    base_path: str = "/fhir"
    name: str = "pumpcds test FHIR server"
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    # -- data ------------------------------------------------------------------------------
    def add(self, items: Iterable[dict[str, Any]]) -> None:
        for item in items:
            if item.get("resourceType") == "Bundle":
                self.add(e["resource"] for e in item.get("entry", []) if "resource" in e)
            else:
                self.resources.append(item)

    def load_dir(self, directory: Path) -> FhirTestServer:
        for path in sorted(directory.rglob("*.json")):
            data = json.loads(path.read_text())
            self.add(data if isinstance(data, list) else [data])
        return self

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r.get("resourceType") == resource_type]

    def find(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        return next((r for r in self.of_type(resource_type) if r.get("id") == resource_id), None)

    def resource_types(self) -> list[str]:
        return sorted(set(fhir_search.SEARCH_PARAMETERS) | {str(r.get("resourceType")) for r in self.resources})

    def hits(self, prefix: str = "") -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    # -- answers ---------------------------------------------------------------------------
    def answer(self, payload: Any, status: int = 200, fault: Fault | None = None) -> Response:
        """A FHIR JSON answer, or what the fault in force says instead."""
        if fault and fault.delay_s:
            time.sleep(fault.delay_s)
        if fault and fault.redirect_to:
            return Response(status=302, headers={"Location": fault.redirect_to})
        if fault and fault.body is not None:
            return Response(fault.body, status=fault.status or 200, content_type=FHIR_JSON)
        if fault and fault.status:
            payload, status = outcome("exception", "injected fault"), fault.status
        return Response(json.dumps(payload), status=status, content_type=FHIR_JSON)

    def capability_statement(self, base_url: str) -> dict[str, Any]:
        resources = []
        for rtype in self.resource_types():
            params = fhir_search.parameters_for(rtype)
            resources.append({
                "type": rtype,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": [{"name": p.name, "type": p.kind} for p in params.values()],
            })
        rest: dict[str, Any] = {
            "mode": "server",
            "documentation": "Open development server: no authentication; CORS for any origin; "
                             "search by GET or by POST to [type]/_search; unknown parameters are ignored "
                             "unless the request says Prefer: handling=strict.",
            "security": {"cors": True, "description": "none: development data only"},
            "resource": resources,
        }
        for feature in self.features:
            feature.describe(rest)
        return {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": self._started,
            "kind": "instance",
            "software": {"name": self.name},
            "implementation": {"description": self.name, "url": base_url},
            "fhirVersion": FHIR_VERSION,
            "format": [FHIR_JSON, "json"],
            "rest": [rest],
        }

    # -- search ----------------------------------------------------------------------------
    def search(self, rtype: str, params: MultiDict[str, str], base_url: str, strict: bool) -> tuple[dict[str, Any], int]:
        criteria = {k: params.getlist(k) for k in params if k not in fhir_search.RESULT_PARAMETERS}
        unknown = fhir_search.unknown_parameters(rtype, criteria)
        if unknown and strict:
            return outcome("not-supported", f"{rtype} has no search parameter {', '.join(unknown)}"), 400
        used = {k: v for k, v in criteria.items() if k not in unknown}
        try:
            fhir_search.check_dates(rtype, used)
            hits = [r for r in self.of_type(rtype) if fhir_search.matches(r, used)]
            sort = params.get("_sort", "")
            if sort:
                hits = fhir_search.sorted_resources(hits, rtype, sort)
            offset = int(params.get("_offset", "0"))
            count = max(0, min(int(params.get("_count", self.page_size)), self.page_size))
        except SearchError as exc:
            return outcome("invalid", str(exc)), 400
        except ValueError:
            return outcome("invalid", "_count and _offset must be whole numbers"), 400
        page = hits[offset: offset + count]
        applied = [(k, v) for k, values in used.items() for v in values]
        for name in ("_sort", "_count"):
            if name in params:
                applied.append((name, params[name]))
        self_url = f"{base_url}/{rtype}" + (f"?{urlencode(applied)}" if applied else "")
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(hits),
            "link": [{"relation": "self", "url": self_url}],
            "entry": [{"fullUrl": f"{base_url}/{rtype}/{r.get('id')}", "resource": r, "search": {"mode": "match"}}
                      for r in page],
        }
        if count and offset + count < len(hits):
            nxt = [*[(k, v) for k, v in applied if k != "_count"], ("_count", str(count)), ("_offset", str(offset + count))]
            bundle["link"].append({"relation": "next", "url": f"{base_url}/{rtype}?{urlencode(nxt)}"})
        if not bundle["entry"]:
            del bundle["entry"]
        return bundle, 200

    # -- the WSGI app ----------------------------------------------------------------------
    def wsgi(self) -> Flask:
        app = Flask("fhir-test-server")
        app.url_map.converters["rtype"] = _TypeConverter
        app.url_map.converters["fid"] = _IdConverter
        CORS(app, origins="*", methods=["GET", "POST", "OPTIONS"], allow_private_network=True,
             expose_headers=["Location", "Content-Location", "ETag"], max_age=600)
        bp = Blueprint("fhir", __name__, url_prefix=self.base_path)

        def base_url() -> str:
            return request.host_url.rstrip("/") + self.base_path

        @app.before_request
        def record() -> None:
            query = {**request.args.to_dict(), **(request.form.to_dict() if request.method == "POST" else {})}
            with self._lock:
                self.requests.append(RecordedRequest(request.path, query, dict(request.headers.items()), request.method))

        for feature in self.features:
            feature.register(bp, self)

        @bp.get("/metadata")
        def metadata() -> Response:
            return self.answer(self.capability_statement(base_url()))

        @bp.get("/<rtype:rtype>/<fid:rid>")
        def read(rtype: str, rid: str) -> Response:
            fault = self.faults.get(f"{rtype}/{rid}") or self.faults.get(rtype)
            found = self.find(rtype, rid)
            if found is None:
                return self.answer(outcome("not-found", f"{rtype}/{rid} is not known"), 404, fault)
            return self.answer(found, fault=fault)

        def run_search(rtype: str, params: MultiDict[str, str]) -> Response:
            strict = "handling=strict" in request.headers.get("Prefer", "").replace(" ", "")
            body, status = self.search(rtype, params, base_url(), strict)
            return self.answer(body, status, self.faults.get(rtype))

        @bp.get("/<rtype:rtype>")
        def search_get(rtype: str) -> Response:
            return run_search(rtype, request.args)

        @bp.post("/<rtype:rtype>/_search")
        def search_post(rtype: str) -> Response:
            if request.content_length and request.mimetype != "application/x-www-form-urlencoded":
                return self.answer(outcome("not-supported", "POST _search takes an application/x-www-form-urlencoded body"), 415)
            params = MultiDict(request.args)
            for key, values in request.form.lists():
                for value in values:
                    params.add(key, value)
            return run_search(rtype, params)

        app.register_blueprint(bp)

        @app.errorhandler(404)
        def _not_found(_: Exception) -> Response:
            return self.answer(outcome("not-found", f"no route {request.path}; see {self.base_path}/metadata"), 404)

        @app.errorhandler(405)
        def _not_allowed(_: Exception) -> Response:
            return self.answer(outcome("not-supported", f"{request.method} is not supported on {request.path}"), 405)

        return app
