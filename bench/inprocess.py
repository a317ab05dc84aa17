"""In-process timings of each pipeline stage on visits of growing size, and a profile.

Stages, as `invoke` runs them: request validation, prefetch gathering (parsing the FHIR JSON
into R4B models), the coding engine (`engine.assess`: visit facts and rules), the rules alone
(`evaluate(visit, rules)` on the visit's facts), the card builder, and the whole `invoke` (what
`pumpcds evaluate` and the HTTP endpoint run).
"""
from __future__ import annotations

import cProfile
import io
import pstats
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from service.cdshooks.invoke import invoke
from service.cdshooks.validation import check_request
from service.coding.engine import evaluate
from service.config import load_settings
from service.fhir.prefetch import PrefetchResolver
from service.runtime import Runtime

from . import visits
from .timing import Timing, linear_fit, time_calls
from .visits import SERVICE_ID, order_sign_request, resource_count

GROWTH_SIZES = (5, 10, 30, 60, 100, 200, 300)
STAGES = ("validate", "parse", "engine", "rules", "cards", "invoke")


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
    per_type: dict[str, tuple[Timing, Timing]] = field(default_factory=dict)  # parse, of which normalize


def _stage_calls(rt: Runtime, body: dict[str, Any]) -> tuple[dict[str, Callable[[], object]], int, int]:
    service = rt.services[SERVICE_ID]
    request = check_request(service, body)
    resolver = PrefetchResolver(rt.settings.max_prefetch_resources)
    resources = resolver.gather(request, None, "benchmark: no FHIR server")
    assessment = rt.engine.assess(resources)
    cards = rt.cards.build(assessment.findings, request, resources)
    visit = assessment.visit
    assert visit is not None
    calls = {
        "validate": lambda: check_request(service, body),
        "parse": lambda: resolver.gather(request, None, "benchmark: no FHIR server"),
        "engine": lambda: rt.engine.assess(resources),
        "rules": lambda: evaluate(visit, rt.engine.rules),
        "cards": lambda: rt.cards.build(assessment.findings, request, resources),
        "invoke": lambda: invoke(rt, SERVICE_ID, body),
    }
    return calls, len(assessment.findings), len(cards)


def per_type_parse(max_seconds: float) -> dict[str, tuple[Timing, Timing]]:
    """Cost of parsing one resource of each type in the synthetic visit, and of normalising it."""
    from service.fhir.normalize import normalize_resource
    from service.fhir.parse import parse_resource

    samples = (visits.procedure(1), visits.observation(1), visits.medication_administration(1), visits.device(),
               visits.coverage(), visits.practitioner(), visits.practitioner_role(), visits.draft_refill_order())
    return {
        raw["resourceType"]: (time_calls(lambda raw=raw: parse_resource(raw, "bench"), max_seconds=max_seconds),
                              time_calls(lambda raw=raw: normalize_resource(raw), max_seconds=max_seconds))
        for raw in samples
    }


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
        for stage in STAGES:
            result.stages[stage] = time_calls(calls[stage], max_seconds=max_seconds_per_stage)
        sizes.append(result)
    xs = [float(s.resources) for s in sizes]
    fits = {stage: linear_fit(xs, [s.stages[stage].median_ms for s in sizes]) for stage in STAGES}
    import service.coding.engine as engine_module

    provisional = "PROVISIONAL" in (engine_module.__doc__ or "")
    return InProcessResult(sizes, fits, profile_invoke(rt, order_sign_request(30)), provisional,
                           per_type_parse(max_seconds_per_stage / 2))
