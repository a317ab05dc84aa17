"""The jti replay store (Redis or the database) behind a proxy that refuses, hangs and cuts.

A store that cannot answer must never let a token through unchecked (no replay protection) and
never hold the call: 503 + Retry-After within the store's timeout, and at once while the breaker
is open; after the store is back (and Retry-After has passed) calls are accepted again.
"""
from __future__ import annotations

import time

import pytest
import requests

from service.app import create_app
from service.security.replay import RETRY_AFTER_S
from tests.conftest import LiveServer
from tests.faultproxy import FaultProxy
from tests.store.helpers import postgres_schema, reachable

from .conftest import ORDER_SIGN, order_sign_body
from .tokens import auth, mint

REDIS_TIMEOUT_MS = 300
DB_CONNECT_S, DB_STATEMENT_MS = 2, 500
# longest acceptable wait: the store's own limit plus wide scheduling slack (a bound, not a benchmark)
LIMITS_S = {"redis": REDIS_TIMEOUT_MS / 1000 + 1.5, "database": DB_CONNECT_S + DB_STATEMENT_MS / 1000 + 0.5 + 1.5}


@pytest.fixture(params=["redis", "database"])
def store_kind(request):
    port = 6379 if request.param == "redis" else 5432
    if not reachable(port):
        pytest.skip(f"{request.param} on 127.0.0.1:{port} not reachable: its replay fault test is skipped")
    return request.param


@pytest.mark.parametrize("fault", ["hang", "refuse", "cut"])
def test_replay_store_faults_answer_503_fast_and_recover(secure_settings, store_kind, fault):
    with FaultProxy(6379 if store_kind == "redis" else 5432) as proxy:
        if store_kind == "redis":
            overrides = dict(jwt_replay_store="redis", redis_url=f"redis://127.0.0.1:{proxy.port}/0",
                             redis_timeout_ms=REDIS_TIMEOUT_MS)
            _run(secure_settings, overrides, proxy, fault, LIMITS_S["redis"])
        else:
            with postgres_schema("replayfault") as url:
                overrides = dict(jwt_replay_store="database", database_url=url.replace(":5432/", f":{proxy.port}/"),
                                 database_connect_timeout_s=DB_CONNECT_S, database_statement_timeout_ms=DB_STATEMENT_MS)
                _run(secure_settings, overrides, proxy, fault, LIMITS_S["database"])


def _run(settings, overrides, proxy: FaultProxy, fault: str, limit_s: float) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings.with_overrides(**overrides))
    with LiveServer(app) as server, requests.Session() as http:
        def call() -> tuple[requests.Response, float]:
            started = time.monotonic()
            resp = http.post(server.url + ORDER_SIGN, json=order_sign_body(),
                             headers=auth(mint(ORDER_SIGN)), timeout=30)
            return resp, time.monotonic() - started

        assert call()[0].status_code == 200
        getattr(proxy, fault)()
        answers = [call() for _ in range(4)]
        print(f"{fault}: " + ", ".join(f"{r.status_code} in {s:.2f}s" for r, s in answers))
        assert all(seconds < limit_s for _, seconds in answers), answers
        if fault == "cut":  # a dropped connection is replaced: calls go on being checked
            assert all(r.status_code == 200 for r, _ in answers)
            return
        assert all(r.status_code == 503 for r, _ in answers)  # never a 200 without the replay check
        assert all(r.headers.get("Retry-After") == str(RETRY_AFTER_S) for r, _ in answers)
        proxy.heal()
        deadline = time.monotonic() + 20
        while call()[0].status_code != 200:
            assert time.monotonic() < deadline, "calls not accepted again after the store came back"
            time.sleep(RETRY_AFTER_S / 2)
    app.extensions["pumpcds"].close()
