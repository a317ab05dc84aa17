"""Mint client JWTs for tests with the test-only keys in tests/security/keys/.

Every token minted here is remembered in `MINTED`, so the log-hygiene test can prove that
none of them ever reached a log line.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

KEYS = Path(__file__).resolve().parent / "keys"
PUBLIC_BASE_URL = "https://cds.test.example"
ISS_ES = "https://ehr-es.test.example"
ISS_EPIC = "https://epic.test.example/interconnect-prd-oauth/"
ISS_TENANT = "https://multi-tenant.test.example"
MINTED: list[str] = []


def private_pem(kid: str) -> bytes:
    return (KEYS / f"{kid}.private.pem").read_bytes()


def public_pem(kid: str) -> bytes:
    key = serialization.load_pem_private_key(private_pem(kid), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def mint(
    path: str = "/cds-services",
    *,
    kid: str = "test-es384-a",
    alg: str | None = None,
    iss: str = ISS_ES,
    aud: Any = None,
    lifetime: int = 300,
    iat: float | None = None,
    claims: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    signing_kid: str | None = None,
) -> str:
    """A signed client JWT for `path` on the test service; override any part to forge one."""
    alg = alg or ("RS384" if "rs384" in (signing_kid or kid) else "ES384")
    now = int(time.time() if iat is None else iat)
    payload: dict[str, Any] = {
        "iss": iss,
        "aud": aud if aud is not None else PUBLIC_BASE_URL + path,
        "iat": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
    }
    payload.update(claims or {})
    for name in drop:
        payload.pop(name, None)
    head: dict[str, Any] = {"typ": "JWT", "kid": kid}
    head.update(headers or {})
    # typ=None makes PyJWT leave `typ` out; other None values mean "leave this header out"
    head = {k: v for k, v in head.items() if v is not None or k == "typ"}
    token = jwt.encode(payload, private_pem(signing_kid or kid), algorithm=alg, headers=head)
    MINTED.append(token)
    return token


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    token = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}.{_b64(signature)}"
    MINTED.append(token)
    return token


def hs256_with_public_key(kid: str, payload: dict[str, Any]) -> str:
    """The classic algorithm-confusion forgery: HMAC keyed with the issuer's PUBLIC key PEM."""
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    sig = hmac.new(public_pem(kid), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{_b64(sig)}"
    MINTED.append(token)
    return token


def claims_for(path: str, iss: str = ISS_ES, lifetime: int = 300) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": iss, "aud": PUBLIC_BASE_URL + path, "iat": now, "exp": now + lifetime, "jti": str(uuid.uuid4())}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
