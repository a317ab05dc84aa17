"""One hook call end to end: validation -> FHIR data -> visit facts and rules -> cards.

Shared by the HTTP endpoint and `pumpcds evaluate`, so both give the same answer.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..coding.relevance import involves_pump
from ..errors import ApiError
from ..fhir.client import Budget
from ..fhir.errors import FhirDataError, PrefetchMissing, TooManyResources
from ..fhir.prefetch import PrefetchResolver
from ..runtime import Runtime
from .gate import WORK_KEYS, Relevance, judge
from .validation import HookRequest, check_request

log = logging.getLogger("pumpcds.hooks")


@dataclass
class HookResult:
    status: int
    body: dict[str, Any]
    service_id: str
    hook_instance: str | None = None
    rule_ids: list[str] = field(default_factory=list)
    codes_recommended: list[str] = field(default_factory=list)
    card_uuids: list[str] = field(default_factory=list)
    fhir_calls: int = 0
    fhir_failures: int = 0
    latency_ms: float = 0.0
    error: str | None = None
    # per card: uuid, rule id and version (from the card's pumpcds extension), suggestion uuids
    cards: list[dict[str, Any]] = field(default_factory=list)
    # the relevance gate's verdict: "pump", "none" (answered at once) or "unknown" (decided after fetching)
    gate: str | None = None
    # syntax repairs made to the FHIR JSON before validation (PHI-free: element paths only)
    repairs: list[str] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def audit_record(self) -> dict[str, Any]:
        """PHI-free summary of the call: ids and codes only."""
        return {
            "hook_instance": self.hook_instance,
            "service_id": self.service_id,
            "status": self.status,
            "rule_ids": self.rule_ids,
            "codes_recommended": self.codes_recommended,
            "card_uuids": self.card_uuids,
            "latency_ms": round(self.latency_ms, 2),
            "fhir_calls": self.fhir_calls,
            "fhir_failures": self.fhir_failures,
            "error": self.error,
            "cards": self.cards,
            "gate": self.gate,
            "repairs": self.repairs,
            "timestamp": self.started_at.isoformat(),
        }


def card_audit(card: dict[str, Any]) -> dict[str, Any]:
    """Ids of one card for the audit: its uuid, the rule (and version) that made it, its suggestions.

    The card builder marks each card with ``extension.pumpcds = {ruleId, ruleVersion}``; a card
    without that mark is recorded with rule unknown (None).
    """
    ext = card.get("extension")
    mark = ext.get("pumpcds") if isinstance(ext, dict) else None
    mark = mark if isinstance(mark, dict) else {}
    rule_id, version = mark.get("ruleId"), mark.get("ruleVersion")
    suggestions = card.get("suggestions")
    return {
        "uuid": card.get("uuid") if isinstance(card.get("uuid"), str) else None,
        "rule_id": str(rule_id) if isinstance(rule_id, (str, int)) else None,
        "rule_version": str(version) if isinstance(version, (str, int)) else None,
        "suggestion_uuids": [
            s["uuid"] for s in suggestions or () if isinstance(s, dict) and isinstance(s.get("uuid"), str)
        ] if isinstance(suggestions, list) else [],
    }


def _no_client_reason(runtime: Runtime, request: HookRequest) -> str:
    if not request.fhir_server:
        return "the request has no fhirServer"
    if not runtime.fhir_server_allowed(request.fhir_server):
        return "its fhirServer is not on this service's allow-list, so it was not contacted"
    return ""


def invoke(runtime: Runtime, service_id: str, body: Any) -> HookResult:
    started = time.perf_counter()
    result = HookResult(status=200, body={"cards": []}, service_id=service_id)
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
        required_work = {t.key for t in service.prefetch if t.required} & WORK_KEYS
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
        cards = runtime.cards.build(assessment.findings, request, resources)
        result.body = {"cards": cards}
        result.rule_ids = sorted({f.rule.id for f in assessment.findings})
        result.codes_recommended = sorted({f.code for f in assessment.findings if f.code})
        result.card_uuids = [c["uuid"] for c in cards if "uuid" in c]
        result.cards = [card_audit(c) for c in cards if isinstance(c, dict)]
    except ApiError as exc:
        result.status = exc.status
        result.body = exc.body()
        result.error = exc.message
    return _finish(runtime, result, started)


def _http_error(exc: FhirDataError) -> ApiError:
    """The HTTP answer to a domain error of the FHIR data: 412 required data missing, 413 too much."""
    if isinstance(exc, PrefetchMissing):
        return ApiError(412, exc.message, exc.field, missing=exc.missing)
    return ApiError(413 if isinstance(exc, TooManyResources) else 422, exc.message, exc.field)


def _finish(runtime: Runtime, result: HookResult, started: float) -> HookResult:
    result.latency_ms = (time.perf_counter() - started) * 1000
    for sink in runtime.audit_sinks:
        try:
            sink(result.audit_record())
        except Exception:  # an audit failure must never cost the clinician the answer
            log.exception("audit sink failed for service=%s", result.service_id)
    return result
