"""One hook call end to end: validation -> FHIR data -> visit facts and rules -> cards.

Shared by the HTTP endpoint and `pumpcds evaluate`, so both give the same answer. The answer
stays typed (`CdsResponse`) until the edge serialises it once (`HookResult.to_json()`); the
audit record is read from the same models.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from ..coding.relevance import involves_pump
from ..errors import ApiError
from ..fhir.client import Budget
from ..fhir.errors import FhirDataError, PrefetchMissing, TooManyResources
from ..fhir.prefetch import PrefetchResolver
from ..runtime import Runtime
from .gate import Relevance, judge
from .models import NO_CARDS, CdsResponse
from .validation import HookRequest, check_request

log = logging.getLogger("pumpcds.hooks")


@dataclass
class HookResult:
    status: int
    service_id: str
    response: CdsResponse = NO_CARDS
    # the OperationOutcome of a refused call (status 4xx)
    error_body: dict[str, Any] | None = None
    hook_instance: str | None = None
    rule_ids: list[str] = field(default_factory=list)
    codes_recommended: list[str] = field(default_factory=list)
    fhir_calls: int = 0
    fhir_failures: int = 0
    latency_ms: float = 0.0
    error: str | None = None
    # the relevance gate's verdict: "pump", "none" (answered at once) or "unknown" (decided after fetching)
    gate: str | None = None
    # syntax repairs made to the FHIR JSON before validation (PHI-free: element paths only)
    repairs: list[str] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def body(self) -> dict[str, Any]:
        """The answer as JSON values (tests, `pumpcds evaluate`); the HTTP edge sends `to_json()`."""
        return self.error_body if self.error_body is not None else self.response.as_dict()

    def to_json(self) -> bytes:
        return orjson.dumps(self.error_body) if self.error_body is not None else self.response.to_json()

    def audit_record(self) -> dict[str, Any]:
        """PHI-free summary of the call: ids and codes only. Per card: its uuid, the rule (and
        version) that made it, its suggestions' uuids; a card without a rule mark has rule None."""
        cards = self.response.cards
        return {
            "hook_instance": self.hook_instance,
            "service_id": self.service_id,
            "status": self.status,
            "rule_ids": self.rule_ids,
            "codes_recommended": self.codes_recommended,
            "card_uuids": [c.uuid for c in cards],
            "latency_ms": round(self.latency_ms, 2),
            "fhir_calls": self.fhir_calls,
            "fhir_failures": self.fhir_failures,
            "error": self.error,
            "cards": [{"uuid": c.uuid,
                       "rule_id": c.mark.rule_id if c.mark else None,
                       "rule_version": c.mark.rule_version if c.mark else None,
                       "suggestion_uuids": [s.uuid for s in c.suggestions]} for c in cards],
            "gate": self.gate,
            "repairs": self.repairs,
            "timestamp": self.started_at.isoformat(),
        }


def _no_client_reason(runtime: Runtime, request: HookRequest) -> str:
    if not request.fhir_server:
        return "the request has no fhirServer"
    if not runtime.fhir_server_allowed(request.fhir_server):
        return "its fhirServer is not on this service's allow-list, so it was not contacted"
    return ""


def invoke(runtime: Runtime, service_id: str, body: Any) -> HookResult:
    started = time.perf_counter()
    result = HookResult(status=200, service_id=service_id)
    try:
        service = runtime.services.get(service_id)
        if service is None:
            raise ApiError(404, f"no CDS service with id '{service_id}'; see GET /cds-services", "id")
        if isinstance(body, dict) and isinstance(body.get("hookInstance"), str):
            result.hook_instance = body["hookInstance"][:200]
        request = check_request(service, body)
        vocabulary = runtime.engine.reader.vocab
        verdict = judge(request, vocabulary)
        result.gate = verdict.value
        if verdict is Relevance.NONE:
            return _finish(runtime, result, started)
        budget = Budget(runtime.settings.fhir_time_budget_ms / 1000)
        client = runtime.client_for(request, budget)
        if verdict is Relevance.UNKNOWN and client is None:
            result.gate = "none-nothing-to-judge"  # no data sent and no FHIR server to ask
            return _finish(runtime, result, started)
        resolver = PrefetchResolver(runtime.settings.max_prefetch_resources, runtime.settings.max_json_depth,
                                    runtime.settings.fhir_validation)
        # undecided: judged on what the FHIR server sends; when the visit's work could not be
        # fetched the question stays open and the usual 412 applies
        required_work = {t.key for t in service.prefetch if t.required} & service.spec.work_keys
        still_open = (
            (lambda raw, failed: bool(failed & required_work) or involves_pump(raw, vocabulary))
            if verdict is Relevance.UNKNOWN else None
        )
        try:
            resources = resolver.gather(request, client, _no_client_reason(runtime, request), relevant=still_open)
        except FhirDataError as exc:
            raise _http_error(exc) from None
        finally:
            if client is not None:
                result.fhir_calls, result.fhir_failures = client.stats.calls, client.stats.failures
        if resources is None:  # fetched, and no pump content in it either
            result.gate = "none-after-fetch"
            return _finish(runtime, result, started)
        result.repairs = [f"{i.resource_type or 'entry'}: {i.problem}" for i in resources.issues if not i.skipped][:20]
        assessment = runtime.engine.assess(resources)
        result.response = CdsResponse(tuple(runtime.cards.build(assessment.findings, request, resources,
                                                                assessment.visit)))
        result.rule_ids = sorted({f.rule.id for f in assessment.findings})
        result.codes_recommended = sorted({f.code for f in assessment.findings if f.code})
    except ApiError as exc:
        result.status = exc.status
        result.error_body = exc.body()
        result.error = exc.message
    return _finish(runtime, result, started)


def _http_error(exc: FhirDataError) -> ApiError:
    """The HTTP answer to a domain error of the FHIR data: 412 required data missing, 413 too much."""
    if isinstance(exc, PrefetchMissing):
        return ApiError(412, exc.message, exc.field, missing=exc.missing)
    return ApiError(413 if isinstance(exc, TooManyResources) else 422, exc.message, exc.field)


def _finish(runtime: Runtime, result: HookResult, started: float) -> HookResult:
    result.latency_ms = (time.perf_counter() - started) * 1000
    record = result.audit_record()  # one record, read by every sink (queue, metrics, request log)
    for sink in runtime.audit_sinks:
        try:
            sink(record)
        except Exception:  # an audit failure must never cost the clinician the answer
            log.exception("audit sink failed for service=%s", result.service_id)
    return result
