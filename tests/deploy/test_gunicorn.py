"""The production gunicorn config really serves the app: health, discovery, hooks, metrics of all workers."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.visits import order_sign_request
from service.cdshooks.services import ORDER_SIGN_SERVICE_ID
from tests.deploy.harness import gunicorn as start_gunicorn


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with start_gunicorn(tmp_path) as (url, _proc):
        yield url, tmp_path / "access.log"


def hook_count(text: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "pumpcds_request_duration_seconds_count" and s.labels.get("service") == ORDER_SIGN_SERVICE_ID
    )


def test_gunicorn_serves_health_discovery_hooks_and_metrics_of_all_workers(gunicorn):
    url, access_log = gunicorn
    with requests.Session() as http:
        assert http.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}
        assert http.get(f"{url}/readyz", timeout=5).status_code == 200
        discovery = http.get(f"{url}/cds-services", timeout=5)
        assert discovery.status_code == 200
        assert ORDER_SIGN_SERVICE_ID in {s["id"] for s in discovery.json()["services"]}
    calls = 8
    for _ in range(calls):  # new connections, so both workers get some of them
        resp = requests.post(f"{url}/cds-services/{ORDER_SIGN_SERVICE_ID}", json=order_sign_request(5), timeout=10)
        assert resp.status_code == 200 and "cards" in resp.json()
    # whichever worker answers the scrape, it reports the calls of every worker
    for _ in range(4):
        assert hook_count(requests.get(f"{url}/metrics", timeout=5).text) == calls
    for _ in range(50):  # the access log is written by the workers; give them a moment
        lines = [json.loads(line) for line in access_log.read_text().splitlines() if line.strip()]
        if len(lines) >= calls + 3:
            break
        time.sleep(0.1)
    hooks = [entry for entry in lines if entry["path"].startswith("/cds-services/")]
    assert len(hooks) == calls and all(entry["status"] == 200 and entry["method"] == "POST" for entry in hooks)
    pids = {entry["worker"] for entry in lines}
    assert pids  # every line names its worker
