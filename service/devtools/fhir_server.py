"""A small but real FHIR R4 REST server for tests and demos: reads, searches with paging, faults.

It serves JSON resources loaded from files (e.g. `fhir_samples/fhir_server/`) or given in code
at `/fhir`, and records every request it gets (path, query, headers) so tests can assert on
what the service sent. `pumpcds demo-fhir-server` runs it for trying prefetch-less requests.
Development only: no authentication, everything in memory.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlencode

from flask import Flask, Response, request

# search parameter -> element paths holding a reference to match
_REFERENCE_PARAMS = {
    "patient": ("subject", "patient", "beneficiary"),
    "subject": ("subject",),
    "encounter": ("encounter", "context"),
    "context": ("context", "encounter"),
    "practitioner": ("practitioner",),
}


@dataclass
class Fault:
    status: int | None = None  # answer this HTTP status
    delay_s: float = 0.0  # wait before answering
    body: bytes | None = None  # answer these raw bytes (e.g. invalid JSON)
    redirect_to: str | None = None


@dataclass
class RecordedRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FhirTestServer:
    resources: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 50
    faults: dict[str, Fault] = field(default_factory=dict)  # key: resource type or "Type/id"
    requests: list[RecordedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, items: Iterable[dict[str, Any]]) -> None:
        for item in items:
            if item.get("resourceType") == "Bundle":
                self.add(e["resource"] for e in item.get("entry", []) if "resource" in e)
            else:
                self.resources.append(item)

    def load_dir(self, directory: Path) -> "FhirTestServer":
        for path in sorted(directory.rglob("*.json")):
            data = json.loads(path.read_text())
            self.add(data if isinstance(data, list) else [data])
        return self

    def _fault_for(self, rtype: str, rid: str | None) -> Fault | None:
        return self.faults.get(f"{rtype}/{rid}") if rid else None or self.faults.get(rtype)

    def _matches(self, resource: dict[str, Any], params: dict[str, str]) -> bool:
        for name, value in params.items():
            if name.startswith("_"):
                continue
            paths = _REFERENCE_PARAMS.get(name)
            if paths is None:
                if name == "status":
                    if resource.get("status") != value:
                        return False
                continue
            wanted = value.split("/")[-1]
            refs = []
            for p in paths:
                v = resource.get(p)
                for item in v if isinstance(v, list) else [v]:
                    if isinstance(item, dict) and isinstance(item.get("reference"), str):
                        refs.append(item["reference"].split("/")[-1])
            if wanted not in refs:
                return False
        return True

    def wsgi(self) -> Flask:
        app = Flask("fhir-test-server")

        def answer(fault: Fault | None, payload: Any, status: int = 200) -> Response:
            if fault and fault.delay_s:
                time.sleep(fault.delay_s)
            if fault and fault.redirect_to:
                return Response(status=302, headers={"Location": fault.redirect_to})
            if fault and fault.body is not None:
                return Response(fault.body, status=fault.status or 200, content_type="application/fhir+json")
            if fault and fault.status:
                payload = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]}
                status = fault.status
            return Response(json.dumps(payload), status=status, content_type="application/fhir+json")

        @app.before_request
        def record() -> None:
            with self._lock:
                self.requests.append(
                    RecordedRequest(request.path, dict(request.args), {k: v for k, v in request.headers.items()})
                )

        @app.get("/fhir/<rtype>/<rid>")
        def read(rtype: str, rid: str) -> Response:
            fault = self.faults.get(f"{rtype}/{rid}") or self.faults.get(rtype)
            for r in self.resources:
                if r.get("resourceType") == rtype and r.get("id") == rid:
                    return answer(fault, r)
            return answer(fault, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}, 404)

        @app.get("/fhir/<rtype>")
        def search(rtype: str) -> Response:
            fault = self.faults.get(rtype)
            params = dict(request.args)
            offset = int(params.pop("_offset", "0"))
            count = int(params.get("_count", self.page_size))
            count = min(count, self.page_size)
            hits = [r for r in self.resources if r.get("resourceType") == rtype and self._matches(r, params)]
            page = hits[offset : offset + count]
            bundle: dict[str, Any] = {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(hits),
                "link": [{"relation": "self", "url": request.url}],
                "entry": [{"fullUrl": f"{request.host_url}fhir/{rtype}/{r.get('id')}", "resource": r, "search": {"mode": "match"}} for r in page],
            }
            if offset + count < len(hits):
                nxt = {**params, "_offset": str(offset + count), "_count": str(count)}
                bundle["link"].append({"relation": "next", "url": f"{request.host_url}fhir/{rtype}?{urlencode(nxt)}"})
            if not bundle["entry"]:
                del bundle["entry"]
            return answer(fault, bundle)

        return app

    def hits(self, prefix: str = "") -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith(prefix)]
