"""Fixtures for the security tests: an app with client authentication on, and a loopback JWKS server."""
from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask, jsonify

from service.app import create_app

from .tokens import ISS_EPIC, ISS_ES, ISS_TENANT, KEYS, PUBLIC_BASE_URL

EPIC_JKU = "https://epic.test.example/interconnect-prd-oauth/api/epic/2019/Security/Open/PublicKeys/530005/OAuth2"
ORDER_SIGN = "/cds-services/pump-visit-coding-order-sign"
FEEDBACK = ORDER_SIGN + "/feedback"


def default_issuers() -> list[dict[str, Any]]:
    return [
        {"iss": ISS_ES, "jwks_file": str(KEYS / "test-es384-a.jwks.json")},
        {"iss": ISS_EPIC, "jku": [EPIC_JKU], "jwks_file": str(KEYS / "test-rs384-a.jwks.json"), "algorithms": ["RS384"]},
        {"iss": ISS_TENANT, "jwks_file": str(KEYS / "test-es384-a.jwks.json"), "tenants": ["tenant-a"]},
    ]


@pytest.fixture
def write_issuers(tmp_path: Path) -> Callable[[list[dict[str, Any]]], str]:
    def write(issuers: list[dict[str, Any]]) -> str:
        path = tmp_path / f"issuers-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(yaml.safe_dump({"issuers": issuers}))
        return str(path)

    return write


@pytest.fixture
def secure_settings(settings, write_issuers):
    """Production-like: authentication on, https public URL, in-memory replay cache."""
    return settings.with_overrides(
        development_mode=False,
        public_base_url=PUBLIC_BASE_URL,
        jwt_issuers_path=write_issuers(default_issuers()),
        jwt_replay_store="memory",
        fhir_server_allowlist=("https://ehr.test.example/fhir",),
        allow_synthetic_cms=True,  # the tests have no licensed CMS files
    )


@pytest.fixture
def secure_app(secure_settings):
    return create_app(secure_settings)


@pytest.fixture
def secure_client(secure_app):
    return secure_app.test_client()


def order_sign_body() -> dict[str, Any]:
    return {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": "Practitioner/prac-1",
            "patientId": "pat-1",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": []},
        },
        "prefetch": {"device": None, "procedures": None},
    }


FEEDBACK_BODY = {
    "feedback": [
        {
            "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
            "outcome": "overridden",
            "outcomeTimestamp": "2026-11-20T10:05:31Z",
        }
    ]
}


class JwksServer:
    """A client's key endpoint on loopback whose JWK Set can change; counts the fetches."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.hits = 0
        self._lock = threading.Lock()
        self.url = ""

    def wsgi(self) -> Flask:
        app = Flask("jwks")

        @app.get("/jwks.json")
        def jwks():  # type: ignore[no-untyped-def]
            with self._lock:
                self.hits += 1
            return jsonify(self.jwks)

        return app


@pytest.fixture
def jwks_server_factory(live_server_factory):
    def start() -> JwksServer:
        server = JwksServer()
        live = live_server_factory(server.wsgi())
        server.url = f"{live.url}/jwks.json"
        return server

    return start
