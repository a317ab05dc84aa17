"""A token replayed to ANOTHER worker process is refused: the jti store is shared (database or Redis).

Two real server processes (`python -m service.cli serve`) share one store; the same token goes to
both. Their JSON logs are checked too: the token never appears in them.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from .conftest import default_issuers
from .tokens import PUBLIC_BASE_URL, auth, mint

ROOT = Path(__file__).resolve().parents[2]
DISCOVERY = "/cds-services"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Worker:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-2000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("worker did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def store_env(kind: str, tmp_path: Path) -> dict[str, str]:
    if kind == "sqlite":
        return {"PUMPCDS_JWT_REPLAY_STORE": "database", "DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}"}
    if kind == "postgres":
        if not reachable(5432):
            pytest.skip("PostgreSQL on 127.0.0.1:5432 not reachable")
        return {"PUMPCDS_JWT_REPLAY_STORE": "database", "DATABASE_URL": POSTGRES_URL}
    if not reachable(6379):
        pytest.skip("Redis on 127.0.0.1:6379 not reachable")
    return {"PUMPCDS_JWT_REPLAY_STORE": "auto", "REDIS_URL": REDIS_URL,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}"}


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_replay_to_another_worker_process_is_refused(kind, tmp_path):
    issuers = tmp_path / "issuers.yaml"
    issuers.write_text(yaml.safe_dump({"issuers": default_issuers()}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUMPCDS_") and k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        PYTHONPATH=str(ROOT),
        PUMPCDS_DEVELOPMENT_MODE="false",
        PUMPCDS_ALLOW_SYNTHETIC_CMS="true",  # no licensed CMS files in the tests
        PUMPCDS_PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        PUMPCDS_JWT_ISSUERS_PATH=str(issuers),
        PUMPCDS_FHIR_SERVER_ALLOWLIST="https://ehr.test.example/fhir",
        **store_env(kind, tmp_path),
    )
    workers = [Worker(env, tmp_path / f"worker-{i}.log") for i in range(2)]
    try:
        for w in workers:
            w.wait_ready()
        token = mint(DISCOVERY, claims={"jti": f"{kind}-{uuid.uuid4()}"})
        first = requests.get(workers[0].url + DISCOVERY, headers=auth(token), timeout=10)
        replay = requests.get(workers[1].url + DISCOVERY, headers=auth(token), timeout=10)
        fresh = requests.get(workers[1].url + DISCOVERY, headers=auth(mint(DISCOVERY)), timeout=10)
    finally:
        for w in workers:
            w.stop()
    assert first.status_code == 200, first.text
    assert replay.status_code == 401
    assert fresh.status_code == 200, fresh.text
    logs = "".join(w.log_path.read_text() for w in workers)
    assert "jti already used" in logs
    for part in token.split("."):
        assert part not in logs
