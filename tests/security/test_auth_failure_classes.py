"""What a 401 tells the caller (issue 15): a fixed class and sentence per failure, never the log
reason, and nothing about the service's registrations before the token's signature verifies."""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from service.security.http import AUTH_FAILURE_SYSTEM, unauthorized_body
from service.security.jwt_auth import FAILURE_CLASSES

from .conftest import ORDER_SIGN, order_sign_body
from .tokens import ISS_EPIC, ISS_ES, ISS_TENANT, PUBLIC_BASE_URL, auth, claims_for, hs256_with_public_key, mint, unsigned

DISCOVERY = "/cds-services"
DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"

# case -> (Authorization header value or None, expected class)
CASES: dict[str, tuple[Callable[[], str | None], str]] = {
    "no header": (lambda: None, "missing-token"),
    "Basic scheme": (lambda: "Basic dXNlcjpwdw==", "missing-token"),
    "not a JWS": (lambda: "Bearer not-a-jwt", "malformed-token"),
    "garbage segments": (lambda: "Bearer aaa.bbb.ccc", "malformed-token"),
    "alg none": (lambda: "Bearer " + unsigned({"alg": "none", "typ": "JWT", "kid": "test-es384-a"}, claims_for(DISCOVERY)), "malformed-token"),
    "HS256 with the public key": (lambda: "Bearer " + hs256_with_public_key("test-rs384-a", claims_for(DISCOVERY, iss=ISS_EPIC)), "malformed-token"),
    "no typ": (lambda: "Bearer " + mint(DISCOVERY, headers={"typ": None}), "malformed-token"),
    "no kid": (lambda: "Bearer " + mint(DISCOVERY, headers={"kid": None}), "malformed-token"),
    "unknown issuer": (lambda: "Bearer " + mint(DISCOVERY, iss="https://evil.example.org"), "untrusted-signature"),
    "alg not configured for the issuer": (lambda: "Bearer " + mint(DISCOVERY, kid="test-rs384-a", alg="RS256", iss=ISS_EPIC), "untrusted-signature"),
    "unknown kid": (lambda: "Bearer " + mint(DISCOVERY, headers={"kid": "not-registered"}), "untrusted-signature"),
    "jku off the allow-list": (lambda: "Bearer " + mint(DISCOVERY, headers={"jku": "https://evil.example.org/jwks"}), "untrusted-signature"),
    "signed by another key": (lambda: "Bearer " + mint(DISCOVERY, kid="test-es384-a", signing_kid="test-es384-b"), "untrusted-signature"),
    "bad signature and wrong aud": (lambda: "Bearer " + mint(DISCOVERY, aud="https://elsewhere.example/x", signing_kid="test-es384-b"), "untrusted-signature"),
    "no aud claim": (lambda: "Bearer " + mint(DISCOVERY, drop=("aud",)), "invalid-claims"),
    "no jti claim": (lambda: "Bearer " + mint(DISCOVERY, drop=("jti",)), "invalid-claims"),
    "aud for 127.0.0.1 while the public URL is another host": (
        lambda: "Bearer " + mint(DISCOVERY, aud="http://127.0.0.1:8080" + DISCOVERY), "audience-mismatch"),
    "aud of another endpoint": (lambda: "Bearer " + mint(ORDER_SIGN), "audience-mismatch"),
    "expired": (lambda: "Bearer " + mint(DISCOVERY, iat=time.time() - 900, lifetime=300), "expired-or-not-yet-valid"),
    "iat in the future": (lambda: "Bearer " + mint(DISCOVERY, iat=time.time() + 600, lifetime=300), "expired-or-not-yet-valid"),
    "nbf in the future": (lambda: "Bearer " + mint(DISCOVERY, claims={"nbf": int(time.time()) + 600}), "expired-or-not-yet-valid"),
    "lifetime too long": (lambda: "Bearer " + mint(DISCOVERY, lifetime=7200), "lifetime-too-long"),
    "tenant not allowed": (lambda: "Bearer " + mint(DISCOVERY, iss=ISS_TENANT, claims={"tenant": "tenant-b"}), "tenant-not-allowed"),
}


def kind_of(resp: Any) -> str:
    assert resp.status_code == 401
    body = resp.get_json()
    [issue] = body["issue"]
    [coding] = issue["details"]["coding"]
    assert coding["system"] == AUTH_FAILURE_SYSTEM
    assert body == unauthorized_body(coding["code"])  # the fixed body of its class, nothing added
    return coding["code"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_failure_gets_its_class(secure_client, case):
    header, expected = CASES[case]
    value = header()
    resp = secure_client.get(DISCOVERY, headers={"Authorization": value} if value else {})
    assert kind_of(resp) == expected
    assert FAILURE_CLASSES[expected] in resp.get_json()["issue"][0]["diagnostics"]


def test_replayed_token_class(secure_client):
    token = mint(ORDER_SIGN)
    assert secure_client.post(ORDER_SIGN, json=order_sign_body(), headers=auth(token)).status_code == 200
    assert kind_of(secure_client.post(ORDER_SIGN, json=order_sign_body(), headers=auth(token))) == "replayed-token"


def test_every_class_is_reachable_and_tested():
    assert {kind for _, kind in CASES.values()} | {"replayed-token"} == set(FAILURE_CLASSES)


def test_registration_questions_all_look_the_same_before_the_signature(secure_client):
    """Whether an issuer, a kid, an algorithm or a jku is registered cannot be told from the answer."""
    probes = ["unknown issuer", "alg not configured for the issuer", "unknown kid", "jku off the allow-list",
              "signed by another key", "bad signature and wrong aud"]
    bodies = []
    for case in probes:
        resp = secure_client.get(DISCOVERY, headers={"Authorization": CASES[case][0]()})
        bodies.append((resp.status_code, resp.get_data(), resp.headers["WWW-Authenticate"]))
    assert len(set(bodies)) == 1


def test_no_issuers_registered_gives_the_same_untrusted_class(secure_settings, write_issuers):
    client = create_app(secure_settings.with_overrides(jwt_issuers_path=write_issuers([]))).test_client()
    assert kind_of(client.get(DISCOVERY, headers=auth(mint(DISCOVERY)))) == "untrusted-signature"


def test_the_body_never_echoes_the_token_or_the_log_reason(secure_client, caplog):
    token = mint(DISCOVERY, iss=ISS_TENANT, claims={"tenant": "tenant-secret-b"}, aud=PUBLIC_BASE_URL + "/elsewhere")
    resp = secure_client.get(DISCOVERY, headers=auth(token))
    text = resp.get_data(as_text=True) + resp.headers["WWW-Authenticate"]
    for leaked in (token, ISS_TENANT, "tenant-secret-b", "/elsewhere", PUBLIC_BASE_URL, "test-es384-a", ISS_ES):
        assert leaked not in text
    logged = " | ".join(r.getMessage() for r in caplog.records if r.name == "pumpcds.security")
    assert "audience-mismatch" in logged and PUBLIC_BASE_URL in logged  # the reason is in the log


def test_www_authenticate_follows_rfc_6750(secure_client):
    none = secure_client.get(DISCOVERY)
    assert none.headers["WWW-Authenticate"] == 'Bearer realm="cds-services"'
    bad = secure_client.get(DISCOVERY, headers=auth(mint(DISCOVERY, iat=time.time() - 900)))
    value = bad.headers["WWW-Authenticate"]
    assert 'error="invalid_token"' in value
    description = re.search(r'error_description="([^"]*)"', value).group(1)
    assert description == FAILURE_CLASSES["expired-or-not-yet-valid"]
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in description)


def test_browser_can_read_the_class_cors_on_the_401(secure_client):
    resp = secure_client.get(DISCOVERY, headers={"Origin": "https://sandbox.cds-hooks.org", **auth(mint(ORDER_SIGN))})
    assert resp.headers["Access-Control-Allow-Origin"] == "https://sandbox.cds-hooks.org"
    assert kind_of(resp) == "audience-mismatch"


def test_docs_list_every_class_with_its_sentence():
    text = DOC.read_text(encoding="utf-8")
    for kind, sentence in FAILURE_CLASSES.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{kind}` |")), None)
        assert row is not None, f"docs/security.md has no row for {kind}"
        assert sentence in row, kind


def test_known_answer_json_shape():
    body = unauthorized_body("audience-mismatch")
    assert json.loads(json.dumps(body)) == {
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": "error", "code": "login",
            "details": {"coding": [{"system": AUTH_FAILURE_SYSTEM, "code": "audience-mismatch"}],
                        "text": "token audience does not match this endpoint's public URL"},
            "diagnostics": "authentication failed: token audience does not match this endpoint's public URL",
        }],
    }
