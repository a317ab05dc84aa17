"""/readyz: ready only with rule data loaded and a database that answers; /healthz never asks the DB."""
from __future__ import annotations

from service.app import create_app
from tests.store.helpers import down_database_url


def test_ready_with_rules_and_database(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "ready"
    assert body["checks"] == {"services": True, "rules": True, "database": True}


def test_not_ready_when_the_database_is_unreachable(settings):
    client = create_app(settings, database_url=down_database_url()).test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "not-ready"
    assert body["checks"]["database"] is False and body["checks"]["rules"] is True
    assert "database" in body["failing"]
    assert "postgres" not in str(body).lower()  # the URL (and any password in it) is never shown
    assert client.get("/healthz").status_code == 200  # liveness is the process only

