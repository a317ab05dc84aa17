"""PostgreSQL behind a proxy that refuses, hangs and cuts, under the real app on a real HTTP server.

What must hold in every fault (docs/deployment.md, "Failure behaviour"):
- hook calls answer 200 at once (the audit waits in the queue) and every one is audited once the
  database is back;
- feedback is acknowledged (200) only when stored, else 503 + Retry-After and nothing stored;
- /healthz answers without the database, /readyz says 503;
- no call waits longer than the configured limits (a bound, not a benchmark: the slack is wide).
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from bench.visits import order_sign_request
from service.app import create_app
from service.store import tables
from tests.conftest import LiveServer
from tests.faultproxy import FaultProxy

from .helpers import FEEDBACK_URL, SERVICE_URL, overridden, postgres_schema, reachable, rows

pytestmark = pytest.mark.postgres

CONNECT_S = 2  # libpq's smallest connect timeout
STATEMENT_MS = 500
# the longest any call may take: feedback may first wait up to 0.5 s for the audit queue (only while
# its writer succeeds), then one connect timeout or one statement deadline (statement timeout +
# 0.5 s); plus scheduling slack
LIMIT_S = 0.5 + max(CONNECT_S, STATEMENT_MS / 1000 + 0.5) + 1.5


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not reachable(5432):
        pytest.skip("PostgreSQL on 127.0.0.1:5432 not reachable: the database fault tests are skipped")
    with postgres_schema("faults") as url:
        yield url


def timed(call) -> tuple[requests.Response, float]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    resp = call()
    return resp, time.monotonic() - started


@pytest.mark.parametrize("fault", ["hang", "refuse", "cut"])
def test_database_faults_stall_nothing_and_lose_nothing(settings, pg_url, fault):
    with FaultProxy(5432) as proxy:
        app = create_app(settings, database_url=pg_url.replace(":5432/", f":{proxy.port}/"),
                         database_connect_timeout_s=CONNECT_S, database_statement_timeout_ms=STATEMENT_MS)
        runtime = app.extensions["pumpcds"]
        hook_instances: list[str] = []
        acknowledged: list[str] = []  # card uuids of feedback answered 200
        refused: list[str] = []  # card uuids of feedback answered 503
        durations: dict[str, float] = {}

        with LiveServer(app) as server, requests.Session() as http:
            def hook() -> requests.Response:
                body = {**order_sign_request(5), "hookInstance": str(uuid.uuid4())}
                resp = http.post(server.url + SERVICE_URL, json=body, timeout=30)
                assert resp.status_code == 200, resp.text
                hook_instances.append(body["hookInstance"])
                return resp

            def feedback() -> requests.Response:
                card = str(uuid.uuid4())
                resp = http.post(server.url + FEEDBACK_URL, json={"feedback": [overridden(card)]}, timeout=30)
                assert resp.status_code in (200, 503), resp.text
                (acknowledged if resp.status_code == 200 else refused).append(card)
                if resp.status_code == 503:
                    assert int(resp.headers["Retry-After"]) > 0
                return resp

            hook()
            assert feedback().status_code == 200
            getattr(proxy, fault)()
            for _ in range(3):
                _, seconds = timed(hook)
                durations["hook"] = max(durations.get("hook", 0.0), seconds)
                _, seconds = timed(feedback)
                durations["feedback"] = max(durations.get("feedback", 0.0), seconds)
            health, durations["healthz"] = timed(lambda: http.get(server.url + "/healthz", timeout=30))
            ready, durations["readyz"] = timed(lambda: http.get(server.url + "/readyz", timeout=30))
            assert health.status_code == 200
            if fault == "cut":
                # a cut connection is noticed by the ping and replaced: nothing even fails
                assert refused == [] and ready.status_code == 200
            else:
                assert ready.status_code == 503 and len(refused) == 3
            proxy.heal()
            deadline = time.monotonic() + 20
            while feedback().status_code != 200:  # the client's retry after Retry-After
                assert time.monotonic() < deadline, "feedback not accepted again after the database came back"
                time.sleep(0.5)
            assert runtime.audit_queue.flush(timeout_s=20)

        print(f"{fault}: longest waits (s) " + ", ".join(f"{k}={v:.2f}" for k, v in durations.items()))
        assert all(seconds < LIMIT_S for seconds in durations.values()), durations
        engine = runtime.store.engine
        audited = [r["hook_instance"] for r in rows(engine, tables.audit_record)]
        assert sorted(audited) == sorted(hook_instances)  # every answered call, exactly once
        stored = {r["card_uuid"] for r in rows(engine, tables.feedback_item)}
        assert set(acknowledged) <= stored  # nothing acknowledged and not stored
        assert not (set(refused) & stored)  # a 503 stored nothing (all or nothing)
        runtime.close()


def test_a_slow_statement_is_cancelled_by_the_server_and_url_options_are_kept(pg_url):
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from service.store.db import failure_cause
    from service.store.engine import DbTimeouts, bounded, make_engine

    engine = make_engine(pg_url, DbTimeouts(connect_s=2, statement_ms=300))
    try:
        with bounded(engine) as conn:
            assert "faults_" in conn.execute(text("SHOW search_path")).scalar()  # the URL's own options
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "300ms"
        with pytest.raises(OperationalError) as caught:
            with bounded(engine, seconds=10) as conn:  # the client deadline far off: the server cancels
                conn.execute(text("SELECT pg_sleep(5)"))
        assert "statement timeout" in failure_cause(caught.value)
    finally:
        engine.dispose()
