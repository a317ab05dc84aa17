"""Start the service under gunicorn with deploy/gunicorn.conf.py, bounded, on an ephemeral port."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.store.helpers import closed_port

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
START_TIMEOUT_S = 40


@contextmanager
def gunicorn(tmp_path: Path, **env_overrides: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """Yield (base URL, process) as soon as /healthz answers; SIGTERM and wait on exit."""
    port = closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUMPCDS_", "WEB_CONCURRENCY"))}
    env.update(
        PUMPCDS_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        DATABASE_URL=f"sqlite:///{tmp_path / 'pumpcds.db'}",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        PUMPCDS_ACCESS_LOG=str(tmp_path / "access.log"),
        PUMPCDS_LOG_LEVEL="WARNING",
    )
    env.update(env_overrides)
    stderr = tmp_path / "stderr.log"
    proc = subprocess.Popen(
        [str(GUNICORN), "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=open(stderr, "wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, stderr.read_text()[-2000:]
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer /healthz in time"
            time.sleep(0.05)
        yield url, proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> int:
    """Clean shutdown (SIGTERM: workers finish their calls and drain the audit queue)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode
