"""The production configuration in deploy/ enforces authentication, https FHIR servers and a shared jti store."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from service.app import create_app
from service.config import load_settings
from service.security.issuers import ASYMMETRIC_ALGORITHMS, load_issuers

from .conftest import default_issuers
from .tokens import KEYS, auth, mint

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ROOT / "deploy" / "pumpcds.production.yaml"
EXAMPLE_ISSUERS = ROOT / "service" / "security" / "issuers.example.yaml"
SANDBOX_ISS = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"


@pytest.fixture
def production():
    return load_settings(PRODUCTION, environ={})


def test_production_settings_are_locked_down(production):
    assert production.development_mode is False
    assert production.public_base_url.startswith("https://")
    assert production.jwt_issuers_path
    assert production.jwt_replay_store in {"auto", "database", "redis"}
    assert production.fhir_server_allowlist and all(u.startswith("https://") for u in production.fhir_server_allowlist)
    assert not any("sandbox" in o or "localhost" in o or "127.0.0.1" in o for o in production.cors_origins)


def test_app_on_production_settings_refuses_unauthenticated_calls(production, write_issuers, tmp_path):
    settings = production.with_overrides(
        jwt_issuers_path=write_issuers(default_issuers()), database_url=f"sqlite:///{tmp_path / 'prod.db'}",
        # the production file names mounted quarterly CMS files the tests do not have
        ncci_ptp_path="", ncci_mue_path="", mpfs_rvu_path="", allow_synthetic_cms=True,
    )
    client = create_app(settings).test_client()
    assert client.get("/cds-services").status_code == 401
    token = mint("/cds-services", aud=production.public_base_url + "/cds-services")
    assert client.get("/cds-services", headers=auth(token)).status_code == 200
    # outside development mode with no REDIS_URL, the jti store is the shared database
    assert type(client.application.extensions["pumpcds.auth"].replay).__name__ == "DatabaseReplayCache"


def test_example_issuer_file_loads_and_registers_no_development_issuer():
    issuers = load_issuers(str(EXAMPLE_ISSUERS))
    assert SANDBOX_ISS not in issuers
    for issuer in issuers.values():
        assert set(issuer.algorithms) <= ASYMMETRIC_ALGORITHMS
        assert all(u.startswith("https://") for u in issuer.jku_allowlist)


def test_sandbox_shaped_token_verifies_against_the_configured_jwks_without_a_fetch(settings, write_issuers):
    # Registered like the sandbox in docs/security.md, with a test key standing in for the sandbox key.
    # The jku is allow-listed but never fetched (there is no network): the kid is in the configured file.
    issuers = [{"iss": SANDBOX_ISS, "jku": [SANDBOX_JKU], "jwks_file": str(KEYS / "test-es384-a.jwks.json"),
                "algorithms": ["ES384"]}]
    app = create_app(settings.with_overrides(
        development_mode=False, public_base_url="http://localhost:8080", jwt_issuers_path=write_issuers(issuers),
        jwt_replay_store="memory", allow_synthetic_cms=True))
    now = int(time.time())
    token = mint("/cds-services", iss=SANDBOX_ISS, aud="http://localhost:8080/cds-services",
                 headers={"jku": SANDBOX_JKU}, claims={"iat": now, "exp": now + 300})
    assert app.test_client().get("/cds-services", headers=auth(token)).status_code == 200
