"""Small timing helpers: bounded repeated runs, percentiles, a least-squares line."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    runs: int
    median_ms: float
    p99_ms: float
    mean_ms: float


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def time_calls(fn: Callable[[], object], *, max_runs: int = 2000, min_runs: int = 100,
               max_seconds: float = 3.0, warmup: int = 20) -> Timing:
    """Time ``fn`` many times: stops at max_runs, or at max_seconds once min_runs are done."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    deadline = time.perf_counter() + max_seconds
    while len(samples) < max_runs and (len(samples) < min_runs or time.perf_counter() < deadline):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return Timing(len(samples), statistics.median(samples), percentile(samples, 99), statistics.fmean(samples))


def time_interleaved(calls: dict[str, Callable[[], object]], *, block: int = 20, max_runs: int = 2000,
                     min_runs: int = 100, max_seconds: float = 10.0, warmup: int = 20) -> dict[str, Timing]:
    """Time several calls taking turns, `block` runs each, until each has max_runs (or max_seconds
    passed once each has min_runs). A slow spell of a shared machine then hits every call alike,
    so their medians stay comparable (timed one after the other, the same stage measured 0.47 and
    0.75 ms on this VM within minutes)."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    deadline = time.perf_counter() + max_seconds
    while True:
        counts = [len(v) for v in samples.values()]
        if min(counts) >= max_runs or (min(counts) >= min_runs and time.perf_counter() >= deadline):
            break
        for name, fn in calls.items():
            out = samples[name]
            for _ in range(block):
                start = time.perf_counter_ns()
                fn()
                out.append((time.perf_counter_ns() - start) / 1e6)
    return {name: Timing(len(v), statistics.median(v), percentile(v, 99), statistics.fmean(v))
            for name, v in samples.items()}


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """(slope, intercept, r_squared) of the least-squares line through the points."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    slope = sxy / sxx if sxx else 0.0
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys))
    return slope, intercept, (1 - ss_res / ss_tot) if ss_tot else 1.0
