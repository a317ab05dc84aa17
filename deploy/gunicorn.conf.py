"""Production gunicorn settings for pumpcds: ``gunicorn -c deploy/gunicorn.conf.py``.

Every value can be changed through the environment without editing this file:
PUMPCDS_BIND / PORT, WEB_CONCURRENCY (workers), PUMPCDS_THREADS, PUMPCDS_WORKER_TIMEOUT_S,
PROMETHEUS_MULTIPROC_DIR. See docs/deployment.md.

Why these choices:
- Workers from the CPUs this process may use (``os.sched_getaffinity``; a container's CPU limit
  should be passed as WEB_CONCURRENCY because affinity does not see CFS quotas).
- ``gthread`` workers with ONE thread by default: the hook's work is CPU-bound (parsing FHIR JSON),
  and threads of one worker only take turns on the GIL; the benchmark (docs/benchmarks.md) measured
  clearly better throughput and p99 with 1 thread than with 2 or 4. gthread (not sync) keeps HTTP
  connections alive between the EHR (or its proxy) and the service. Where EHRs often send no
  prefetch, so the service waits up to ``fhir_time_budget_ms`` on their FHIR server, raise
  PUMPCDS_THREADS to 2-4 so a worker serves other calls while it waits.
- Timeouts far below what an EHR waits for a CDS service (CDS Hooks advises answering within
  about 500 ms): the service's own FHIR budget is 1.5 s, so a worker silent for 10 s is stuck.
- The app is loaded once in the master (``preload_app``) so a broken configuration fails at
  start, and the workers share the imported FHIR model classes copy-on-write.
- Prometheus metrics in multiprocess mode so ``GET /metrics`` on any worker reports all workers.
"""
from __future__ import annotations

import gc
import os
import shutil
import tempfile


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


bind = os.environ.get("PUMPCDS_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or _cpus() + 1)
worker_class = "gthread"
threads = int(os.environ.get("PUMPCDS_THREADS") or 1)
timeout = int(os.environ.get("PUMPCDS_WORKER_TIMEOUT_S") or 10)
graceful_timeout = 10
keepalive = 75  # longer than common load balancer idle timeouts (60 s), so they close first
backlog = 512
max_requests = 0  # no periodic recycling needed: memory does not grow (docs/benchmarks.md)
preload_app = True
wsgi_app = "service.wsgi:application()"  # settings from PUMPCDS_CONFIG and the environment
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
limit_request_line = 8190
limit_request_fields = 100

# The app already writes one JSON line per request (logger pumpcds.request: request id, status,
# latency, rule ids, codes), so gunicorn's access log is off unless PUMPCDS_ACCESS_LOG names a file
# (or "-" for stdout): a second line per request cost ~2% of a worker's CPU under load.
# When on: one JSON object per request, ids and codes only (no query string, no body, no token).
accesslog = os.environ.get("PUMPCDS_ACCESS_LOG") or None
access_log_format = (
    '{"ts":"%(t)s","logger":"gunicorn.access","method":"%(m)s","path":"%(U)s","status":%(s)s,'
    '"bytes":"%(B)s","duration_us":%(D)s,"request_id":"%({x-request-id}o)s","worker":"%(p)s"}'
)
errorlog = "-"
loglevel = os.environ.get("PUMPCDS_GUNICORN_LOG_LEVEL", "info")

GC_THRESHOLDS = (20_000, 20, 20)

# Prometheus multiprocess mode: must be set before prometheus_client is first imported, which
# happens when the app is preloaded after this file has been read.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pumpcds-prometheus-")
_METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def on_starting(server):  # type: ignore[no-untyped-def]
    """Start with an empty metrics directory: values of an earlier run must not be summed in."""
    os.makedirs(_METRICS_DIR, exist_ok=True)
    for name in os.listdir(_METRICS_DIR):
        path = os.path.join(_METRICS_DIR, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def pre_fork(server, worker):  # type: ignore[no-untyped-def]
    """Move the preloaded app's objects out of the collector's reach before forking.

    Objects frozen here are never scanned again, so a full collection in a worker walks only what
    that worker made (parsed FHIR models), and copy-on-write pages of the master stay shared.
    """
    gc.freeze()


def post_fork(server, worker):  # type: ignore[no-untyped-def]
    """Each hook call builds thousands of short-lived model objects; a larger first-generation
    threshold makes collections rarer without letting garbage pile up (cycles are few).

    Database connections need nothing here: the master closes its own after migrating, and every
    engine forgets inherited pooled connections in a forked child (service/store/engine.py,
    ``os.register_at_fork``), so each worker opens its own. (Looking for engines with
    ``gc.get_objects()`` here would find none: ``pre_fork`` froze them out of the collector's view.)
    """
    gc.set_threshold(*GC_THRESHOLDS)


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    """Clean worker exit: store every audit record still queued, then close connections. Bounded
    so it ends before the master's SIGKILL at `graceful_timeout` (calls in flight finish first)."""
    runtime = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("pumpcds")
    if runtime is not None:
        runtime.close(timeout_s=max(1, graceful_timeout - 3))


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
