"""In-process timings of each pipeline stage on visits of growing size, and a profile.

Stages, as `invoke` runs them: request validation, prefetch gathering (reading the FHIR JSON in:
conversions, the type check of the elements the facts read, R4 validation as `fhir_validation`
says), the coding engine (`engine.assess`: visit facts and rules), the rules alone
(`evaluate(visit, rules)` on the visit's facts), the card builder, and the whole `invoke` (what
`pumpcds evaluate` and the HTTP endpoint run). Also, in the same run: the typical visit under each
`fhir_validation` mode, and the typical visit with a long history of other encounters against the
time it takes just to read that history's JSON.
"""
from __future__ import annotations

import cProfile
import io
import pstats
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from service.cdshooks.invoke import invoke
from service.cdshooks.validation import check_request
from service.coding.engine import evaluate
from service.config import load_settings
from service.fhir.prefetch import PrefetchResolver
from service.fhir.validate import MODES
from service.runtime import Runtime

from . import visits
from .timing import Timing, linear_fit, time_calls, time_interleaved
from .visits import SERVICE_ID, order_sign_request, resource_count

GROWTH_SIZES = (5, 10, 30, 60, 100, 200, 300)
STAGES = ("validate", "parse", "engine", "rules", "cards", "invoke")
TYPICAL = 30
HISTORY = 2000  # resources of the patient's other encounters, sent along with the typical visit


@dataclass
class HistoryResult:
    resources: int
    visit: Timing  # invoke, the typical visit alone
    with_history: Timing  # invoke, the same visit with the history in its prefetch
    read: Timing  # orjson.loads of the history's JSON: what merely reading it costs

    @property
    def extra_over_read(self) -> float:
        return (self.with_history.median_ms - self.visit.median_ms) / self.read.median_ms


@dataclass
class SizeResult:
    resources: int
    findings: int
    cards: int
    stages: dict[str, Timing] = field(default_factory=dict)


@dataclass
class InProcessResult:
    sizes: list[SizeResult]
    fits: dict[str, tuple[float, float, float]]
    profile_top: str
    engine_provisional: bool
    per_type: dict[str, tuple[Timing, Timing]] = field(default_factory=dict)  # read in: off, strict
    modes: dict[str, dict[str, Timing]] = field(default_factory=dict)  # fhir_validation -> parse, invoke
    history: HistoryResult | None = None


def _stage_calls(rt: Runtime, body: dict[str, Any]) -> tuple[dict[str, Callable[[], object]], int, int]:
    service = rt.services[SERVICE_ID]
    request = check_request(service, body)
    resolver = PrefetchResolver(rt.settings.max_prefetch_resources, rt.settings.max_json_depth, rt.settings.fhir_validation)
    resources = resolver.gather(request, None, "benchmark: no FHIR server")
    assert resources is not None, "the synthetic visit is a pump visit"
    assessment = rt.engine.assess(resources)
    cards = rt.cards.build(assessment.findings, request, resources)
    visit = assessment.visit
    assert visit is not None
    calls: dict[str, Callable[[], object]] = {
        "validate": lambda: check_request(service, body),
        "parse": lambda: resolver.gather(request, None, "benchmark: no FHIR server"),
        "engine": lambda: rt.engine.assess(resources),
        "rules": lambda: evaluate(visit, rt.engine.rules),
        "cards": lambda: rt.cards.build(assessment.findings, request, resources),
        "invoke": lambda: invoke(rt, SERVICE_ID, body),
    }
    return calls, len(assessment.findings), len(cards)


def per_type_parse(max_seconds: float) -> dict[str, tuple[Timing, Timing]]:
    """Cost of reading in one resource of each type of the synthetic visit: without R4 validation
    (`off`) and with it (`strict`)."""
    from service.fhir.parse import parse_resource

    samples = (visits.procedure(1), visits.observation(1), visits.medication_administration(1), visits.device(),
               visits.coverage(), visits.practitioner(), visits.practitioner_role(), visits.draft_refill_order())
    out = {}
    for raw in samples:
        def off(raw: dict[str, Any] = raw) -> object:
            return parse_resource(raw, "bench")

        def strict(raw: dict[str, Any] = raw) -> object:
            return parse_resource(raw, "bench", validation="strict")

        out[raw["resourceType"]] = (time_calls(off, max_seconds=max_seconds), time_calls(strict, max_seconds=max_seconds))
    return out


def history_resource(i: int) -> dict[str, Any]:
    """One resource of another encounter of the patient: readings, procedures, drugs given."""
    kind = (visits.observation, visits.procedure, visits.medication_administration)[i % 3]
    resource = kind(i + 1)
    resource["id"] = f"bench-history-{i}"
    element = "context" if resource["resourceType"] == "MedicationAdministration" else "encounter"
    resource[element] = {"reference": f"Encounter/bench-enc-history-{i // 10}"}
    return resource


def with_history(body: dict[str, Any], n: int) -> dict[str, Any]:
    """The visit with n resources of other encounters added to its searchset prefetch."""
    out = orjson.loads(orjson.dumps(body))
    keys = {"Observation": "observations", "Procedure": "procedures", "MedicationAdministration": "medicationAdministrations"}
    for i in range(n):
        r = history_resource(i)
        out["prefetch"][keys[r["resourceType"]]]["entry"].append({"fullUrl": f"urn:uuid:{r['id']}", "resource": r})
    return out


def mode_timings(max_seconds: float) -> dict[str, dict[str, Timing]]:
    """The typical visit under each fhir_validation mode: reading in, and the whole call."""
    out = {}
    body = order_sign_request(TYPICAL)
    for mode in MODES:
        rt = Runtime.build(load_settings(environ={}, database_url="sqlite://", log_level="WARNING", fhir_validation=mode))
        calls, _, _ = _stage_calls(rt, body)
        out[mode] = {stage: time_calls(calls[stage], max_seconds=max_seconds) for stage in ("parse", "invoke")}
    return out


def history_timing(max_seconds: float) -> HistoryResult:
    rt = Runtime.build(load_settings(environ={}, database_url="sqlite://", log_level="WARNING",
                                     max_prefetch_resources=TYPICAL + HISTORY + 10))
    body = order_sign_request(TYPICAL)
    long = with_history(body, HISTORY)
    history_json = orjson.dumps([history_resource(i) for i in range(HISTORY)])
    return HistoryResult(
        HISTORY,
        time_calls(lambda: invoke(rt, SERVICE_ID, body), max_seconds=max_seconds),
        time_calls(lambda: invoke(rt, SERVICE_ID, long), max_seconds=max_seconds, min_runs=30),
        time_calls(lambda: orjson.loads(history_json), max_seconds=max_seconds),
    )


def profile_invoke(rt: Runtime, body: dict[str, Any], runs: int = 200, top: int = 25) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        invoke(rt, SERVICE_ID, body)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    text = out.getvalue()
    return text[text.find("ncalls"):] if "ncalls" in text else text


def run(max_seconds_per_stage: float = 2.0) -> InProcessResult:
    settings = load_settings(environ={}, database_url="sqlite://", log_level="WARNING")
    rt = Runtime.build(settings)
    sizes: list[SizeResult] = []
    for n in GROWTH_SIZES:
        body = order_sign_request(n)
        assert resource_count(body) == n
        calls, findings, cards = _stage_calls(rt, body)
        result = SizeResult(n, findings, cards)
        result.stages.update(time_interleaved({stage: calls[stage] for stage in STAGES},
                                              max_seconds=max_seconds_per_stage * len(STAGES)))
        sizes.append(result)
    xs = [float(s.resources) for s in sizes]
    fits = {stage: linear_fit(xs, [s.stages[stage].median_ms for s in sizes]) for stage in STAGES}
    import service.coding.engine as engine_module

    provisional = "PROVISIONAL" in (engine_module.__doc__ or "")
    return InProcessResult(sizes, fits, profile_invoke(rt, order_sign_request(TYPICAL)), provisional,
                           per_type_parse(max_seconds_per_stage / 2), mode_timings(max_seconds_per_stage),
                           history_timing(max_seconds_per_stage))
