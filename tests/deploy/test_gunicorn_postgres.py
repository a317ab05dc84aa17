"""A cold gunicorn start on PostgreSQL: every answered hook call has its audit row, from the first
request on (workers never share the master's connections), and a clean stop loses none."""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, func, select

from bench.visits import order_sign_request
from service.cdshooks.services import ORDER_SIGN_SERVICE_ID
from service.store import tables
from tests.security.conftest import default_issuers
from tests.security.tokens import PUBLIC_BASE_URL, auth, mint
from tests.store.helpers import postgres_schema, reachable

from .harness import gunicorn, stop

pytestmark = pytest.mark.postgres

CALLS = 120
CLIENTS = 6


@pytest.fixture
def pg_url():
    if not reachable(5432):
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432")
    with postgres_schema("gunicorn") as url:
        yield url


def production_env(tmp_path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Client JWTs checked, jti replay store in the same PostgreSQL database (as the issue measured)."""
    import yaml

    issuers = tmp_path / "issuers.yaml"
    issuers.write_text(yaml.safe_dump({"issuers": default_issuers()}))
    return dict(PUMPCDS_DEVELOPMENT_MODE="false", PUMPCDS_PUBLIC_BASE_URL=PUBLIC_BASE_URL,
                PUMPCDS_JWT_ISSUERS_PATH=str(issuers), PUMPCDS_JWT_REPLAY_STORE="database",
                PUMPCDS_FHIR_SERVER_ALLOWLIST="https://ehr.test.example/fhir", PUMPCDS_ALLOW_SYNTHETIC_CMS="true")


@pytest.mark.parametrize("mode", ["development", "production"])
def test_audit_rows_equal_answered_calls_from_a_cold_start(tmp_path, pg_url, mode):
    body = order_sign_request(5)
    path = f"/cds-services/{ORDER_SIGN_SERVICE_ID}"
    env = production_env(tmp_path) if mode == "production" else {}
    statuses: Counter[int] = Counter()
    with gunicorn(tmp_path, DATABASE_URL=pg_url, PUMPCDS_THREADS="2", **env) as (url, proc):
        # no warm-up: the calls start the moment /healthz first answers
        def call(i: int) -> int:
            headers = auth(mint(path)) if mode == "production" else {}
            with requests.Session() as http:  # a new connection each time, so both workers serve
                return http.post(url + path, json={**body, "hookInstance": f"cold-{i}"},
                                 headers=headers, timeout=15).status_code

        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses.update(pool.map(call, range(CALLS)))
        assert stop(proc) == 0
    log = (tmp_path / "stderr.log").read_text()
    assert statuses == {200: CALLS}, log[-3000:]

    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            instances = list(conn.execute(select(tables.audit_record.c.hook_instance)).scalars())
            statuses_stored = conn.execute(select(func.count()).where(tables.audit_record.c.status == 200)).scalar()
    finally:
        engine.dispose()
    assert sorted(instances) == sorted(f"cold-{i}" for i in range(CALLS))
    assert statuses_stored == CALLS
    for problem in ("audit write failed", "not stored at exit", "audit queue full", "Traceback"):
        assert problem not in log, log[-3000:]
