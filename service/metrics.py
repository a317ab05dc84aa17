"""Prometheus metrics: what an operator needs to see that the service is fast and useful.

- request latency per service (hook and feedback calls) and per other endpoint,
- FHIR server fetch latency (time to response headers) and fetch failures,
- cards issued per rule, feedback outcomes per rule.

Labels are ids only (service ids, rule ids, route names, outcomes): never patient data.

Several gunicorn workers: each worker is a process with its own counters. When the environment
variable ``PROMETHEUS_MULTIPROC_DIR`` is set *before* prometheus_client is imported (the gunicorn
config in ``deploy/`` does this), every worker writes its values to files in that directory and
``GET /metrics`` on any worker reports the sum over all workers. Without it (tests, ``pumpcds
serve``) the metrics of the one process are reported. Only counters and histograms are used, which
aggregate correctly across processes.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Buckets sized for a service whose whole hook must stay well under the EHR's ~500 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUEST_LATENCY = Histogram(
    "pumpcds_request_duration_seconds",
    "Time from request start to response, per CDS service (hooks, feedback) or other endpoint.",
    ("service", "endpoint", "method", "status"),
    buckets=LATENCY_BUCKETS,
)
FHIR_FETCH_LATENCY = Histogram(
    "pumpcds_fhir_fetch_duration_seconds",
    "Time until the FHIR server's response headers arrived, per fetch.",
    ("status",),
    buckets=LATENCY_BUCKETS,
)
FHIR_FETCHES = Counter("pumpcds_fhir_fetches_total", "FHIR server calls made to fill in prefetch.", ("service",))
FHIR_FETCH_FAILURES = Counter(
    "pumpcds_fhir_fetch_failures_total",
    "FHIR server calls that gave no usable answer (timeout, unreachable, HTTP error, not FHIR).",
    ("service",),
)
HOOK_CALLS = Counter("pumpcds_hook_calls_total", "Hook calls by service and HTTP status.", ("service", "status"))
GATE_VERDICTS = Counter(
    "pumpcds_hook_gate_total",
    "Hook calls by the relevance gate's verdict: pump, none (answered at once), none-after-fetch, "
    "none-nothing-to-judge; '-' for calls refused before the gate.",
    ("service", "gate"),
)
CARDS_ISSUED = Counter(
    "pumpcds_cards_issued_total",
    "Hook answers carrying a finding of this rule (one per rule per answer with cards).",
    ("service", "rule"),
)
FEEDBACK_OUTCOMES = Counter(
    "pumpcds_feedback_outcomes_total",
    "Card feedback received, per rule of the card (unknown when the card cannot be traced) and outcome.",
    ("service", "rule", "outcome"),
)

UNKNOWN_RULE = "unknown"
_OUTCOMES = {"accepted", "overridden"}

# card uuid -> rule id; installed by whoever stores the cards issued (the audit store, issue 4).
CardRuleResolver = Callable[[str], "str | None"]


def record_hook(audit: dict[str, Any]) -> None:
    """Audit sink (see ``Runtime.audit_sinks``): hook outcome, FHIR calls and rules of the cards."""
    service = str(audit.get("service_id") or "")
    status = audit.get("status")
    HOOK_CALLS.labels(service, str(status)).inc()
    GATE_VERDICTS.labels(service, str(audit.get("gate") or "-")[:40]).inc()
    calls = int(audit.get("fhir_calls") or 0)
    if calls:
        FHIR_FETCHES.labels(service).inc(calls)
    failures = int(audit.get("fhir_failures") or 0)
    if failures:
        FHIR_FETCH_FAILURES.labels(service).inc(failures)
    if status == 200 and audit.get("card_uuids"):
        for rule in audit.get("rule_ids") or ():
            CARDS_ISSUED.labels(service, str(rule)).inc()


def record_feedback(service_id: str, rule_id: str | None, outcome: str) -> None:
    """One feedback item; ``rule_id`` None when the card cannot be traced to its rule."""
    outcome = outcome if outcome in _OUTCOMES else "other"
    FEEDBACK_OUTCOMES.labels(service_id, rule_id or UNKNOWN_RULE, outcome).inc()


def _observe_fhir_response(resp: Any, *args: Any, **kwargs: Any) -> None:
    """requests response hook on the runtime's FHIR session."""
    try:
        FHIR_FETCH_LATENCY.labels(f"{resp.status_code // 100}xx").observe(resp.elapsed.total_seconds())
    except Exception:  # metrics must never cost a fetch
        pass


def registry() -> CollectorRegistry:
    """All workers' metrics in multiprocess mode, else this process's."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)
        return combined
    return REGISTRY


def exposition() -> Response:
    return Response(generate_latest(registry()), mimetype=None, content_type=CONTENT_TYPE_LATEST)


def _service_label(app: Flask) -> tuple[str, str]:
    """(service, endpoint) labels: the service id for calls to a known CDS service, else ``-``."""
    endpoint = request.endpoint or "unmatched"
    view_args = request.view_args or {}
    service_id = view_args.get("service_id")
    runtime = app.extensions.get("pumpcds")
    if isinstance(service_id, str) and runtime is not None and service_id in runtime.services:
        return service_id, endpoint
    return "-", endpoint


def install_metrics(app: Flask, audit_sinks: list[Any], http_session: Any = None) -> None:
    """Wire the metrics into one app: audit sink, request timing hooks, FHIR session hook."""
    audit_sinks.append(record_hook)
    if http_session is not None and _observe_fhir_response not in http_session.hooks["response"]:
        http_session.hooks["response"].append(_observe_fhir_response)

    @app.before_request
    def _metrics_start() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _metrics_observe(resp: Response) -> Response:
        started = g.get("metrics_started")
        if started is None:
            return resp
        service, endpoint = _service_label(app)
        REQUEST_LATENCY.labels(service, endpoint, request.method, str(resp.status_code)).observe(
            time.perf_counter() - started
        )
        return resp

