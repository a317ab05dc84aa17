"""Client JWT authentication (CDS Hooks 2.0 "Trusting CDS Clients"): one test per forgery or bad token."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from service.app import create_app
from service.config import ConfigError
from service.security.http import unauthorized_body
from service.security.issuers import load_issuers
from service.security.jwt_auth import FAILURE_CLASSES, AuthFailure, ClientAuthenticator
from service.security.replay import MemoryReplayCache

from .conftest import EPIC_JKU, FEEDBACK, FEEDBACK_BODY, ORDER_SIGN, order_sign_body
from .tokens import (
    ISS_EPIC,
    ISS_ES,
    ISS_TENANT,
    KEYS,
    PUBLIC_BASE_URL,
    auth,
    claims_for,
    hs256_with_public_key,
    mint,
    unsigned,
)

DISCOVERY = "/cds-services"


def refused(resp) -> bool:
    """401 with one of the fixed class bodies: the caller learns the class, never the log reason
    (which class each failure gets: test_auth_failure_classes.py)."""
    return resp.status_code == 401 and resp.get_json() in [unauthorized_body(k) for k in FAILURE_CLASSES]


def reasons(caplog) -> str:
    return " | ".join(r.getMessage() for r in caplog.records if r.name == "pumpcds.security")


# --- accepted -------------------------------------------------------------------------------


def test_valid_es384_token_opens_discovery_service_and_feedback(secure_client):
    assert secure_client.get(DISCOVERY, headers=auth(mint(DISCOVERY))).status_code == 200
    resp = secure_client.post(ORDER_SIGN, json=order_sign_body(), headers=auth(mint(ORDER_SIGN)))
    assert resp.status_code == 200, resp.get_json()
    resp = secure_client.post(FEEDBACK, json=FEEDBACK_BODY, headers=auth(mint(FEEDBACK)))
    assert resp.status_code == 200, resp.get_json()


def test_valid_epic_style_rs384_token_with_early_nbf_and_jku(secure_client):
    now = int(time.time())
    token = mint(
        ORDER_SIGN,
        kid="test-rs384-a",
        iss=ISS_EPIC,
        claims={"nbf": now - 300},  # Epic sets nbf about five minutes before iat
        headers={"jku": EPIC_JKU},
    )
    resp = secure_client.post(ORDER_SIGN, json=order_sign_body(), headers=auth(token))
    assert resp.status_code == 200, resp.get_json()


def test_aud_as_a_list_naming_the_endpoint_is_accepted(secure_client):
    token = mint(DISCOVERY, aud=[PUBLIC_BASE_URL + DISCOVERY])
    assert secure_client.get(DISCOVERY, headers=auth(token)).status_code == 200


# --- refused, one way each -------------------------------------------------------------------


def test_no_authorization_header(secure_client, caplog):
    resp = secure_client.get(DISCOVERY)
    assert refused(resp)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "no Authorization header" in reasons(caplog)


@pytest.mark.parametrize("value", ["Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer a.b.c", "Bearer ...."])
def test_malformed_token(secure_client, value):
    assert refused(secure_client.get(DISCOVERY, headers={"Authorization": value}))


def test_alg_none(secure_client, caplog):
    token = unsigned({"alg": "none", "typ": "JWT", "kid": "test-es384-a"}, claims_for(DISCOVERY))
    assert refused(secure_client.get(DISCOVERY, headers=auth(token)))
    assert "alg 'none'" in reasons(caplog)


def test_hs256_signed_with_the_public_key(secure_client, caplog):
    token = hs256_with_public_key("test-rs384-a", claims_for(ORDER_SIGN, iss=ISS_EPIC))
    resp = secure_client.post(ORDER_SIGN, json=order_sign_body(), headers=auth(token))
    assert refused(resp)
    assert "HS256" in reasons(caplog)


def test_algorithm_not_configured_for_the_issuer(secure_client):
    # the Epic registration allows RS384 only; an RS256 token from it is refused
    token = mint(DISCOVERY, kid="test-rs384-a", alg="RS256", iss=ISS_EPIC)
    assert refused(secure_client.get(DISCOVERY, headers=auth(token)))


def test_missing_typ(secure_client):
    assert refused(secure_client.get(DISCOVERY, headers=auth(mint(DISCOVERY, headers={"typ": None}))))


def test_missing_kid(secure_client, caplog):
    assert refused(secure_client.get(DISCOVERY, headers=auth(mint(DISCOVERY, headers={"kid": None}))))
    assert "kid is missing" in reasons(caplog)


def test_unknown_critical_header_extension(secure_client):
    token = mint(DISCOVERY, headers={"crit": ["exp-ext"], "exp-ext": 1})
    assert refused(secure_client.get(DISCOVERY, headers=auth(token)))


def test_unknown_kid(secure_client, caplog):
    token = mint(DISCOVERY, headers={"kid": "not-a-registered-kid"})
    assert refused(secure_client.get(DISCOVERY, headers=auth(token)))
    assert "not among the configured keys" in reasons(caplog)


def test_signed_by_a_key_the_issuer_does_not_hold(secure_client):
    # right kid in the header, but signed with a different private key
    token = mint(DISCOVERY, kid="test-es384-a", signing_kid="test-es384-b")
    assert refused(secure_client.get(DISCOVERY, headers=auth(token)))


def test_jku_off_the_allow_list_is_never_fetched(secure_settings, write_issuers, jwks_server_factory, caplog):
    listed, attacker = jwks_server_factory(), jwks_server_factory()
    listed.jwks = attacker.jwks = json.loads((KEYS / "test-es384-a.jwks.json").read_text())
    issuers = [{"iss": ISS_ES, "jku": [listed.url]}]
    client = create_app(secure_settings.with_overrides(jwt_issuers_path=write_issuers(issuers))).test_client()
    token = mint(DISCOVERY, headers={"jku": attacker.url})
    assert refused(client.get(DISCOVERY, headers=auth(token)))
    assert attacker.hits == 0 and listed.hits == 0
    assert "not on the allow-list" in reasons(caplog)


def test_wrong_iss(secure_client, caplog):
    token = mint(DISCOVERY, iss="https://evil.example.org")
    assert refused(secure_client.get(DISCOVERY, headers=auth(token)))
    assert "not a registered issuer" in reasons(caplog)


def test_wrong_aud_another_endpoint(secure_client):
    token = mint(DISCOVERY)  # aud names discovery, the call goes to the service
    assert refused(secure_client.post(ORDER_SIGN, json=order_sign_body(), headers=auth(token)))


def test_aud_is_checked_against_the_public_url_not_request_url(secure_client):
    # the test client calls http://localhost/...; a token for that URL must not pass
    token = mint(DISCOVERY, aud="http://localhost" + DISCOVERY)
    assert refused(secure_client.get(DISCOVERY, headers=auth(token)))


def test_expired(secure_client, caplog):
    token = mint(DISCOVERY, iat=time.time() - 900, lifetime=300)
    assert refused(secure_client.get(DISCOVERY, headers=auth(token)))
    assert "expired" in reasons(caplog)


def test_iat_in_the_future(secure_client, caplog):
    token = mint(DISCOVERY, iat=time.time() + 600, lifetime=300)
    assert refused(secure_client.get(DISCOVERY, headers=auth(token)))
    assert "not yet valid" in reasons(caplog)


def test_nbf_in_the_future(secure_client):
    token = mint(DISCOVERY, claims={"nbf": int(time.time()) + 600})
    assert refused(secure_client.get(DISCOVERY, headers=auth(token)))


def test_lifetime_too_long(secure_client, secure_settings, caplog):
    token = mint(DISCOVERY, lifetime=secure_settings.jwt_max_lifetime_s + 60)
    assert refused(secure_client.get(DISCOVERY, headers=auth(token)))
    assert "lifetime" in reasons(caplog)


@pytest.mark.parametrize("claim", ["iss", "aud", "exp", "iat", "jti"])
def test_required_claim_missing(secure_client, claim):
    assert refused(secure_client.get(DISCOVERY, headers=auth(mint(DISCOVERY, drop=(claim,)))))


def test_replayed_jti(secure_client, caplog):
    token = mint(ORDER_SIGN)
    assert secure_client.post(ORDER_SIGN, json=order_sign_body(), headers=auth(token)).status_code == 200
    assert refused(secure_client.post(ORDER_SIGN, json=order_sign_body(), headers=auth(token)))
    assert "replayed" in reasons(caplog)


def test_same_jti_from_another_issuer_is_not_a_replay(secure_client):
    jti = "shared-nonce-1"
    first = mint(DISCOVERY, claims={"jti": jti})
    second = mint(DISCOVERY, iss=ISS_TENANT, claims={"jti": jti, "tenant": "tenant-a"})
    assert secure_client.get(DISCOVERY, headers=auth(first)).status_code == 200
    assert secure_client.get(DISCOVERY, headers=auth(second)).status_code == 200


def test_wrong_tenant(secure_client, caplog):
    ok = mint(DISCOVERY, iss=ISS_TENANT, claims={"tenant": "tenant-a"})
    assert secure_client.get(DISCOVERY, headers=auth(ok)).status_code == 200
    wrong = mint(DISCOVERY, iss=ISS_TENANT, claims={"tenant": "tenant-b"})
    assert refused(secure_client.get(DISCOVERY, headers=auth(wrong)))
    missing = mint(DISCOVERY, iss=ISS_TENANT)
    assert refused(secure_client.get(DISCOVERY, headers=auth(missing)))
    assert "tenant 'tenant-b' is not allowed" in reasons(caplog)


# --- keys from an allow-listed jku -----------------------------------------------------------


def test_key_rotation_on_the_jku_is_picked_up(secure_settings, write_issuers, jwks_server_factory):
    keys = jwks_server_factory()
    keys.jwks = json.loads((KEYS / "test-es384-a.jwks.json").read_text())
    issuers = [{"iss": ISS_ES, "jku": [keys.url]}]
    settings = secure_settings.with_overrides(jwt_issuers_path=write_issuers(issuers), jwt_jwks_refresh_cooldown_s=0)
    client = create_app(settings).test_client()

    for _ in range(3):
        assert client.get(DISCOVERY, headers=auth(mint(DISCOVERY, headers={"jku": keys.url}))).status_code == 200
    assert keys.hits == 1  # cached

    keys.jwks = json.loads((KEYS / "test-es384-b.jwks.json").read_text())  # the EHR rotates its key
    token = mint(DISCOVERY, kid="test-es384-b", headers={"jku": keys.url})
    assert client.get(DISCOVERY, headers=auth(token)).status_code == 200
    assert keys.hits == 2
    # the retired key is gone from the refreshed set
    old = mint(DISCOVERY, kid="test-es384-a", headers={"jku": keys.url})
    assert refused(client.get(DISCOVERY, headers=auth(old)))


def test_unknown_kids_do_not_amplify_jku_fetches(secure_settings, write_issuers, jwks_server_factory):
    keys = jwks_server_factory()
    keys.jwks = json.loads((KEYS / "test-es384-a.jwks.json").read_text())
    issuers = [{"iss": ISS_ES, "jku": [keys.url]}]
    settings = secure_settings.with_overrides(jwt_issuers_path=write_issuers(issuers), jwt_jwks_refresh_cooldown_s=3600)
    client = create_app(settings).test_client()
    assert client.get(DISCOVERY, headers=auth(mint(DISCOVERY, headers={"jku": keys.url}))).status_code == 200
    for i in range(5):
        forged = mint(DISCOVERY, headers={"jku": keys.url, "kid": f"forged-{i}"})
        assert refused(client.get(DISCOVERY, headers=auth(forged)))
    assert keys.hits == 1


def test_unreachable_jku_is_refused_not_an_error(secure_settings, write_issuers):
    issuers = [{"iss": ISS_ES, "jku": ["http://127.0.0.1:9/jwks.json"]}]
    client = create_app(secure_settings.with_overrides(jwt_issuers_path=write_issuers(issuers))).test_client()
    token = mint(DISCOVERY, headers={"jku": "http://127.0.0.1:9/jwks.json"})
    assert refused(client.get(DISCOVERY, headers=auth(token)))


# --- what stays open, and what development mode does ----------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json"])
def test_operational_endpoints_need_no_token(secure_client, path):
    assert secure_client.get(path).status_code == 200


@pytest.mark.parametrize("path", [DISCOVERY, ORDER_SIGN, FEEDBACK])
def test_cors_preflight_passes_without_token(secure_client, path):
    resp = secure_client.options(
        path,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert resp.status_code == 200
    assert resp.headers["Access-Control-Allow-Origin"] == "https://sandbox.cds-hooks.org"


def test_refusals_carry_cors_headers_so_browsers_can_read_them(secure_client):
    resp = secure_client.get(DISCOVERY, headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert refused(resp)
    assert resp.headers["Access-Control-Allow-Origin"] == "https://sandbox.cds-hooks.org"


def test_unknown_paths_under_cds_services_are_refused_before_404(secure_client):
    assert refused(secure_client.post("/cds-services/no-such-service", json={}))


def test_development_mode_needs_no_token(client):
    assert client.get(DISCOVERY).status_code == 200


def test_no_issuers_registered_refuses_everything(secure_settings):
    client = create_app(secure_settings.with_overrides(jwt_issuers_path="")).test_client()
    assert refused(client.get(DISCOVERY, headers=auth(mint(DISCOVERY))))


def test_token_is_never_logged(secure_client, caplog):
    caplog.set_level(logging.DEBUG)
    good, bad = mint(ORDER_SIGN), mint(DISCOVERY, iss="https://evil.example.org")
    secure_client.post(ORDER_SIGN, json=order_sign_body(), headers=auth(good))
    secure_client.post(ORDER_SIGN, json=order_sign_body(), headers=auth(good))
    secure_client.get(DISCOVERY, headers=auth(bad))
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    for token in (good, bad):
        for part in token.split("."):
            assert part not in text


# --- registrations are checked at start ------------------------------------------------------


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"iss": "x", "jwks_file": "k.json", "algorithms": ["HS256"]}, "HS256"),
        ({"iss": "x", "jwks_file": "k.json", "algorithms": ["none"]}, "none"),
        ({"iss": "x", "jku": ["http://keys.example.org/jwks"]}, "https"),
        ({"iss": "x"}, "jwks_file"),
        ({"jku": ["https://keys.example.org/jwks"]}, "iss"),
        ({"iss": "x", "jku": "https://k.example.org/j", "secret": "s"}, "unknown field"),
    ],
)
def test_bad_issuer_registrations_fail_at_start(write_issuers, tmp_path, entry, message):
    (tmp_path / "k.json").write_text((KEYS / "test-es384-a.jwks.json").read_text())
    entry = {k: (str(tmp_path / v) if k == "jwks_file" else v) for k, v in entry.items()}
    with pytest.raises(ConfigError, match=message):
        load_issuers(write_issuers([entry]))


def test_jwks_file_with_a_private_key_is_refused(write_issuers, tmp_path):
    private = {"keys": [{"kty": "EC", "crv": "P-384", "kid": "k", "x": "a", "y": "b", "d": "c"}]}
    (tmp_path / "private.json").write_text(json.dumps(private))
    with pytest.raises(ConfigError, match="private key"):
        load_issuers(write_issuers([{"iss": "x", "jwks_file": str(tmp_path / "private.json")}]))


def test_issuer_file_error_stops_the_app(secure_settings, write_issuers):
    path = write_issuers([{"iss": ISS_ES, "jwks_file": "does-not-exist.json"}])
    with pytest.raises(ConfigError):
        create_app(secure_settings.with_overrides(jwt_issuers_path=path))


# --- known answer: the signed example token of the CDS Hooks 2.0 specification ---------------

SPEC = Path(__file__).resolve().parent / "spec_example"


def test_spec_example_token_verifies_against_spec_jwks(write_issuers):
    issuers = load_issuers(
        write_issuers(
            [
                {
                    "iss": "https://fhir-ehr.example.com/",
                    "jku": ["https://fhir-ehr.example.com/jwk_uri"],
                    "jwks_file": str(SPEC / "jwks.json"),
                    "tenants": ["2ddd6c3a-8e9a-44c6-a305-52111ad302a2"],
                }
            ]
        )
    )
    verifier = ClientAuthenticator(issuers, MemoryReplayCache())
    token = (SPEC / "token.jwt").read_text().strip()
    client = verifier.verify(token, "https://cds.example.org/cds-services/some-service", check_times=False)
    assert (client.iss, client.kid, client.alg) == ("https://fhir-ehr.example.com/", "example-kid", "ES384")
    assert client.tenant == "2ddd6c3a-8e9a-44c6-a305-52111ad302a2"
    # with time checks on, the (long expired) example is refused
    with pytest.raises(AuthFailure, match="expired"):
        ClientAuthenticator(issuers, MemoryReplayCache()).verify(
            token, "https://cds.example.org/cds-services/some-service"
        )
    # one flipped signature character breaks it
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(AuthFailure):
        ClientAuthenticator(issuers, MemoryReplayCache()).verify(
            tampered, "https://cds.example.org/cds-services/some-service", check_times=False
        )
