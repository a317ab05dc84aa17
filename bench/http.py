"""Over HTTP: the order-sign service and the bare baseline endpoint side by side, under the
production gunicorn configuration (deploy/gunicorn.conf.py) on 127.0.0.1, driven by wrk.

Both endpoints live in the same app and pass the same request hooks (request log, security
headers, metrics), get the same 30-resource request body, and answer with the same number of
bytes; rounds alternate between them so drift in the machine hits both alike. Memory: resident
and proportional set size of every worker after warm-up and after 10,000 more hook calls.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import requests

from service.api.baseline import BASELINE_PATH
from service.app import create_app
from service.config import load_settings

from .visits import SERVICE_ID, order_sign_request

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).with_name("post.lua")
HOOK_PATH = f"/cds-services/{SERVICE_ID}"
TYPICAL = 30
MEMORY_REQUESTS = 10_000
# calls per worker before its RSS is taken as settled: in process, RSS grows over the first
# ~4,000 calls (allocator arenas, lazily built validators) and is flat from there on
MEMORY_SETTLE_PER_WORKER = 4_000


@dataclass
class WrkRun:
    endpoint: str
    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: str = ""
    cpu_ms_per_request: float | None = None  # CPU the server's processes spent per request (all threads)


@dataclass
class MemorySample:
    label: str
    served: int
    workers: dict[int, tuple[float, float]]  # pid -> (RSS MiB, PSS MiB)


@dataclass
class HttpResult:
    workers: int
    threads: int
    response_bytes: int
    request_bytes: int
    runs: list[WrkRun] = field(default_factory=list)
    memory: list[MemorySample] = field(default_factory=list)
    wrk_version: str = ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.M))
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Socket errors:.*|Non-2xx or 3xx responses:.*", output)
    if not (pct and total and rps):
        raise RuntimeError("wrk output not understood:\n" + output[-2000:])
    return {
        "requests": int(total.group(1)),
        "rps": float(rps.group(1)),
        "p50_ms": _ms(pct["50"]), "p90_ms": _ms(pct["90"]), "p99_ms": _ms(pct["99"]),
        "errors": errors.group(0) if errors else "",
    }


def _wrk(url: str, body_file: Path, connections: int, seconds: float) -> str:
    env = dict(os.environ, BODY_FILE=str(body_file))
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "5s", "--latency",
           "-s", str(LUA), url]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr[-1000:]}")
    return done.stdout


def _load_until(url: str, body_file: Path, done: Any, max_seconds: float = 300) -> None:
    """Run wrk against ``url`` until ``done()`` says enough (checked twice a second) or time is up."""
    env = dict(os.environ, BODY_FILE=str(body_file))
    cmd = ["wrk", "-t1", "-c4", f"-d{int(max_seconds)}s", "--timeout", "5s", "-s", str(LUA), url]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + max_seconds + 10
        while proc.poll() is None and not done() and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)
    if not done():
        raise RuntimeError("load run ended before the request count was reached")


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time so far of these processes, every thread included (the audit writer too)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / os.sysconf("SC_CLK_TCK")


def _worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def _memory(pid: int) -> tuple[float, float]:
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    rss = int(re.search(r"^Rss:\s+(\d+) kB", rollup, re.M).group(1))
    pss = int(re.search(r"^Pss:\s+(\d+) kB", rollup, re.M).group(1))
    return rss / 1024, pss / 1024


def _hook_count(base: str) -> int:
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"{base}/metrics", timeout=5).text
    return int(sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
                   if s.name == "pumpcds_hook_calls_total" and s.labels.get("service") == SERVICE_ID))


def typical_response_bytes(body: dict[str, Any]) -> int:
    """Exact size of the hook's answer to ``body``, so the baseline can answer the same size."""
    app = create_app(load_settings(environ={}, database_url="sqlite://", log_level="WARNING"))
    resp = app.test_client().post(HOOK_PATH, json=body)
    assert resp.status_code == 200, resp.get_data()[:500]
    return len(resp.get_data())


def run(seconds: float = 10.0, rounds: int = 2, connection_levels: tuple[int, ...] = (1, 8),
        memory: bool = True) -> HttpResult:
    """``memory=False`` leaves out the memory runs (14,000+ calls): for a quick look at the ratios."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    body = order_sign_request(TYPICAL)
    size = typical_response_bytes(body)
    work = Path(tempfile.mkdtemp(prefix="pumpcds-bench-"))
    body_file = work / "order-sign-30.json"
    body_file.write_bytes(orjson.dumps(body))
    # an order with nothing about a pump, as most order-sign traffic is: answered by the relevance gate
    unrelated_file = work / "order-sign-unrelated.json"
    unrelated_file.write_bytes((ROOT / "fhir_samples" / "real_clients" / "inferno-crd-order-sign-hook-request.json").read_bytes())
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    # the gunicorn knobs (WEB_CONCURRENCY, PUMPCDS_THREADS) pass through; app settings do not
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUMPCDS_") or k == "PUMPCDS_THREADS"}
    env.update(
        PUMPCDS_BIND=f"127.0.0.1:{port}",
        PUMPCDS_BENCHMARK_BASELINE="true",
        PUMPCDS_BENCHMARK_BASELINE_BYTES=str(size),
        DATABASE_URL=f"sqlite:///{work / 'pumpcds.db'}",
        PROMETHEUS_MULTIPROC_DIR=str(work / "metrics"),
    )
    stderr = open(work / "gunicorn.log", "wb")
    master = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
                              cwd=work, env=env, stdout=stderr, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while True:
            if master.poll() is not None:
                raise RuntimeError("gunicorn exited: " + (work / "gunicorn.log").read_text()[-2000:])
            try:
                if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not become ready")
            time.sleep(0.2)
        conf = _gunicorn_conf(env)
        check = requests.post(f"{base}{BASELINE_PATH}", data=body_file.read_bytes(),
                              headers={"Content-Type": "application/json"}, timeout=5)
        assert check.status_code == 200 and len(check.content) == size, (check.status_code, len(check.content))
        result = HttpResult(conf["workers"], conf["threads"], size, body_file.stat().st_size,
                            wrk_version=subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0])
        # warm-up: every worker imports lazily-loaded parts and fills caches
        for path in (BASELINE_PATH, HOOK_PATH):
            _wrk(base + path, body_file, 8, 5)
        served = _hook_count(base)
        result.memory.append(MemorySample("after warm-up", served,
                                          {pid: _memory(pid) for pid in _worker_pids(master.pid)}))
        for connections in connection_levels:
            for _ in range(rounds):
                for name, path, sent in (("baseline", BASELINE_PATH, body_file), ("order-sign hook", HOOK_PATH, body_file),
                                         ("unrelated order", HOOK_PATH, unrelated_file)):
                    server = [master.pid, *_worker_pids(master.pid)]
                    cpu_before = _cpu_seconds(server)
                    parsed = parse_wrk(_wrk(base + path, sent, connections, seconds))
                    cpu = (_cpu_seconds(server) - cpu_before) * 1000 / max(parsed["requests"], 1)
                    result.runs.append(WrkRun(name, connections, seconds, **parsed, cpu_ms_per_request=cpu))
        if not memory:
            return result
        # memory: sampled once every worker has settled, then after 10,000 further hook calls
        # (wrk is stopped once the count is reached)
        start_count = _hook_count(base)
        settle = MEMORY_SETTLE_PER_WORKER * conf["workers"]
        for target in (settle, settle + MEMORY_REQUESTS):
            _load_until(base + HOOK_PATH, body_file, lambda target=target: _hook_count(base) >= start_count + target)
            served = _hook_count(base)
            result.memory.append(MemorySample(f"after {served - start_count:,} more hook calls", served,
                                              {pid: _memory(pid) for pid in _worker_pids(master.pid)}))
        return result
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=30)
        except subprocess.TimeoutExpired:
            master.kill()
        stderr.close()
        shutil.rmtree(work, ignore_errors=True)


def _gunicorn_conf(env: dict[str, str]) -> dict[str, Any]:
    code = ("import runpy, json; ns = runpy.run_path('deploy/gunicorn.conf.py'); "
            "print(json.dumps({'workers': ns['workers'], 'threads': ns['threads']}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    return orjson.loads(out.stdout)


def ratios(result: HttpResult) -> str:
    """Hook and unrelated-order figures against the baseline, per connection level (means over rounds)."""
    import statistics

    lines = ["connections | endpoint | req/s | p50 ms | p99 ms | throughput x | p99 x | server CPU ms/req"]
    levels: dict[int, dict[str, list[WrkRun]]] = {}
    for r in result.runs:
        levels.setdefault(r.connections, {}).setdefault(r.endpoint, []).append(r)
    for conns, eps in sorted(levels.items()):
        base = eps["baseline"]
        b_rps = statistics.fmean(r.rps for r in base)
        b_p99 = statistics.fmean(r.p99_ms for r in base)
        for name, runs in eps.items():
            rps = statistics.fmean(r.rps for r in runs)
            p50 = statistics.fmean(r.p50_ms for r in runs)
            p99 = statistics.fmean(r.p99_ms for r in runs)
            cpu = statistics.fmean(r.cpu_ms_per_request or 0.0 for r in runs)
            lines.append(f"{conns} | {name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {rps / b_rps:.2f} | {p99 / b_p99:.2f} | {cpu:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m bench.http [seconds] [rounds]: the ratios only, no memory runs
    args = sys.argv[1:]
    res = run(seconds=float(args[0]) if args else 3, rounds=int(args[1]) if len(args) > 1 else 1, memory=False)
    print(ratios(res))
    print(f"load average: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
