"""The benchmark harness measures what it claims (no timing asserted here: benchmarks are not tests)."""
from __future__ import annotations

import os
import threading

import pytest

from bench.http import _cpu_seconds, parse_wrk
from bench.timing import linear_fit, percentile
from bench.visits import SERVICE_ID, SIZES, order_sign_request, resource_count

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:40001/cds-services/pump-visit-coding-order-sign
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    41.20ms   12.01ms 180.33ms   80.00%
    Req/Sec   195.10     20.33   240.00     70.00%
  Latency Distribution
     50%   39.50ms
     75%   45.10ms
     90%   52.70ms
     99%    1.02s
  1951 requests in 10.01s, 3.10MB read
  Non-2xx or 3xx responses: 3
Requests/sec:    194.90
Transfer/sec:    317.22KB
"""


def test_wrk_output_is_read_with_units():
    parsed = parse_wrk(WRK_OUTPUT)
    assert parsed["requests"] == 1951 and parsed["rps"] == 194.90
    assert parsed["p50_ms"] == 39.5 and parsed["p90_ms"] == 52.7 and parsed["p99_ms"] == 1020.0
    assert "Non-2xx" in parsed["errors"]


def test_unreadable_wrk_output_is_an_error():
    with pytest.raises(RuntimeError):
        parse_wrk("wrk: connection refused")


@pytest.mark.parametrize("n", sorted(set(SIZES.values()) | {10, 60}))
def test_synthetic_visits_hold_exactly_n_resources_and_are_accepted(client, n):
    body = order_sign_request(n)
    assert resource_count(body) == n
    resp = client.post(f"/cds-services/{SERVICE_ID}", json=body)
    assert resp.status_code == 200, resp.get_json()


def test_statistics_helpers():
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    slope, intercept, r2 = linear_fit([1, 2, 3, 4], [3, 5, 7, 9])
    assert (round(slope, 6), round(intercept, 6), round(r2, 6)) == (2.0, 1.0, 1.0)


def test_interleaved_timing_gives_every_call_its_runs_and_keeps_their_order_of_cost():
    import time

    from bench.timing import time_interleaved

    order: list[str] = []

    def work(name: str, seconds: float):
        def fn() -> None:
            order.append(name)
            time.sleep(seconds)
        return fn

    got = time_interleaved({"fast": work("fast", 0.0), "slow": work("slow", 0.002)}, block=5, max_runs=30,
                           min_runs=10, max_seconds=5, warmup=1)
    assert got["fast"].runs == got["slow"].runs == 30
    assert got["slow"].median_ms > got["fast"].median_ms + 1
    timed = order[2:]  # after one warm-up call each
    assert timed[:10] == ["fast"] * 5 + ["slow"] * 5  # blocks take turns


def test_server_cpu_counts_every_thread_of_the_processes() -> None:
    before = _cpu_seconds([os.getpid()])

    def spin() -> None:
        x = 0
        for i in range(3_000_000):
            x += i

    worker = threading.Thread(target=spin)
    worker.start()
    worker.join()
    assert _cpu_seconds([os.getpid()]) - before > 0.02  # the thread's work is the process's CPU
