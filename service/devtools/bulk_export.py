"""FHIR Bulk Data Access ($export) on the demo FHIR server, for tests and for trying `pumpcds audit
--fhir-export`: kick-off (system, Patient and Group level), status polling with Retry-After, the
manifest, NDJSON output files, and job deletion. Optional bearer token. Development only: jobs
live in memory, the output is whatever the server holds at kick-off.

Registered on the app of `FhirTestServer.wsgi()` without changing that server:
`BulkExport(server, token="t").register(app)` or `bulk_wsgi(server)`.
"""
from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request

from .fhir_server import FhirTestServer

NDJSON_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}


def _outcome(status: int, text: str, code: str = "invalid") -> Response:
    body = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}
    return Response(json.dumps(body), status=status, content_type="application/fhir+json")


@dataclass
class _Job:
    id: str
    request_url: str
    files: dict[str, list[dict[str, Any]]]
    polls_left: int
    transaction_time: str


@dataclass
class BulkExport:
    server: FhirTestServer
    token: str | None = None  # required as "Authorization: Bearer <token>" when set
    polls_before_ready: int = 1  # status answers 202 this many times before the manifest
    retry_after_s: int = 1
    jobs: dict[str, _Job] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _authorised(self) -> bool:
        return self.token is None or request.headers.get("Authorization", "") == f"Bearer {self.token}"

    def _resources_for(self, level: str, group: str | None) -> list[dict[str, Any]]:
        resources = list(self.server.resources)
        if level == "system":
            return resources
        members: set[str] | None = None
        if group is not None:
            g = next((r for r in resources if r.get("resourceType") == "Group" and r.get("id") == group), None)
            if g is None:
                return []
            members = {m.get("entity", {}).get("reference", "").split("/")[-1] for m in g.get("member") or ()}

        def patient_of(r: dict[str, Any]) -> str | None:
            if r.get("resourceType") == "Patient":
                return r.get("id")
            for key in ("subject", "patient", "beneficiary"):
                ref = r.get(key)
                if isinstance(ref, dict) and isinstance(ref.get("reference"), str) and "Patient/" in ref["reference"]:
                    return ref["reference"].split("/")[-1]
            return None

        return [r for r in resources if (pid := patient_of(r)) is not None and (members is None or pid in members)]

    def register(self, app: Flask) -> Flask:
        def kick_off(level: str, group: str | None = None) -> Response:
            if not self._authorised():
                return _outcome(401, "a bearer token is required", "login")
            if request.headers.get("Prefer", "").replace(" ", "").lower() != "respond-async":
                return _outcome(400, "$export needs the header 'Prefer: respond-async'")
            fmt = request.args.get("_outputFormat")
            if fmt and fmt not in NDJSON_FORMATS:
                return _outcome(400, f"_outputFormat {fmt!r} is not supported; use application/fhir+ndjson")
            types = {t.strip() for t in request.args.get("_type", "").split(",") if t.strip()}
            files: dict[str, list[dict[str, Any]]] = {}
            for r in self._resources_for(level, group):
                if not types or r.get("resourceType") in types:
                    files.setdefault(r["resourceType"], []).append(r)
            job = _Job(uuid.uuid4().hex, request.url, files, self.polls_before_ready,
                       datetime.now(UTC).isoformat())
            with self._lock:
                self.jobs[job.id] = job
            return Response(status=202, headers={"Content-Location": f"{request.host_url}fhir/bulkstatus/{job.id}"})

        app.add_url_rule("/fhir/$export", "bulk_system", lambda: kick_off("system"))
        app.add_url_rule("/fhir/Patient/$export", "bulk_patient", lambda: kick_off("patient"))
        app.add_url_rule("/fhir/Group/<gid>/$export", "bulk_group", lambda gid: kick_off("group", gid))

        @app.route("/fhir/bulkstatus/<job_id>", methods=["GET", "DELETE"])
        def status(job_id: str) -> Response:
            if not self._authorised():
                return _outcome(401, "a bearer token is required", "login")
            with self._lock:
                job = self.jobs.get(job_id)
                if job is None:
                    return _outcome(404, "no such export job", "not-found")
                if request.method == "DELETE":
                    del self.jobs[job_id]
                    return Response(status=202)
                if job.polls_left > 0:
                    job.polls_left -= 1
                    return Response(status=202, headers={"Retry-After": str(self.retry_after_s), "X-Progress": "in progress"})
            manifest = {
                "transactionTime": job.transaction_time,
                "request": job.request_url,
                "requiresAccessToken": self.token is not None,
                "output": [{"type": t, "url": f"{request.host_url}fhir/bulkfiles/{job.id}/{t}.ndjson", "count": len(rs)}
                           for t, rs in sorted(job.files.items())],
                "error": [],
            }
            return Response(json.dumps(manifest), status=200, content_type="application/json")

        @app.get("/fhir/bulkfiles/<job_id>/<name>")
        def output(job_id: str, name: str) -> Response:
            if not self._authorised():
                return _outcome(401, "a bearer token is required", "login")
            job = self.jobs.get(job_id)
            rtype = name.removesuffix(".ndjson")
            if job is None or rtype not in job.files:
                return _outcome(404, "no such output file", "not-found")
            body = "".join(json.dumps(r) + "\n" for r in job.files[rtype])
            return Response(body, status=200, content_type="application/fhir+ndjson")

        return app


def bulk_wsgi(server: FhirTestServer, **options: Any) -> Flask:
    """The demo FHIR server's app with the Bulk Data endpoints added."""
    return BulkExport(server, **options).register(server.wsgi())
