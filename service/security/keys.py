"""Client public keys: JWKS parsing, and a cached fetcher for allow-listed `jku` URLs.

A `jku` is fetched only after the caller has checked it against the issuer's allow-list. Keys
are cached per URL; an unknown `kid` forces at most one refresh per cooldown, so a rotated
EHR key is picked up without letting forged `kid`s make us hammer the EHR's key endpoint.
"""
from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
import orjson
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa

log = logging.getLogger("pumpcds.security")

MAX_JWKS_BYTES = 256 * 1024
LOOPBACK_HOSTS = {"localhost"}


class KeyFetchError(Exception):
    """The JWKS behind a `jku` could not be had; the message is safe to log."""


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    key: Any  # a cryptography public key object
    alg: str | None = None  # the JWK's own `alg`, when it states one

    def fits(self, alg: str) -> bool:
        """Whether this key may verify a token signed with `alg` (key type, curve, JWK alg)."""
        if self.alg and self.alg != alg:
            return False
        if alg.startswith("ES"):
            curve = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}.get(alg)
            return isinstance(self.key, ec.EllipticCurvePublicKey) and curve is not None and isinstance(self.key.curve, curve)
        if alg.startswith(("RS", "PS")):
            return isinstance(self.key, rsa.RSAPublicKey) and self.key.key_size >= 2048
        return False


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_jwks(data: Any, *, allow_private: bool = False) -> dict[str, VerificationKey]:
    """The usable signing keys of a JWK Set, by `kid`. Keys without `kid` or not for signing are skipped."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("a JWK Set must be an object with a 'keys' array")
    keys: dict[str, VerificationKey] = {}
    for jwk in data["keys"]:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
            continue
        if jwk.get("use", "sig") != "sig":
            continue
        if "d" in jwk and not allow_private:
            raise ValueError(f"key {jwk['kid']!r} holds private key material; publish only public keys")
        try:
            key = jwt.PyJWK(jwk).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            log.warning("JWKS key %r skipped: unsupported or malformed", jwk["kid"][:80])
            continue
        if hasattr(key, "public_key"):
            key = key.public_key()  # verification never needs the private half
        alg = jwk.get("alg") if isinstance(jwk.get("alg"), str) else None
        keys[jwk["kid"]] = VerificationKey(jwk["kid"], key, alg)
    return keys


@dataclass
class _Cached:
    keys: dict[str, VerificationKey] = field(default_factory=dict)
    fetched_at: float | None = None  # last successful fetch
    tried_at: float = float("-inf")  # last attempt, successful or not
    lock: threading.Lock = field(default_factory=threading.Lock)


class JkuKeyCache:
    """Keys fetched from allow-listed `jku` URLs, cached per URL, refreshed with a cooldown."""

    def __init__(
        self,
        *,
        timeout_s: float = 2.0,
        ttl_s: float = 3600,
        cooldown_s: float = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._entries: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._session.trust_env = False

    def key(self, url: str, kid: str) -> VerificationKey | None:
        with self._lock:  # one lock per URL: a slow key endpoint does not stall other issuers
            entry = self._entries.setdefault(url, _Cached())
        with entry.lock:
            now = self._clock()
            stale = entry.fetched_at is None or now - entry.fetched_at > self.ttl_s
            if stale and now - entry.tried_at >= min(self.cooldown_s, self.ttl_s):
                self._refresh(url, entry)
            elif kid not in entry.keys and now - entry.tried_at >= self.cooldown_s:
                log.info("unknown kid for an allow-listed jku; refreshing its JWKS once")
                self._refresh(url, entry)
            if entry.fetched_at is None:
                raise KeyFetchError(f"JWKS at {url} could not be fetched")
            return entry.keys.get(kid)

    def _refresh(self, url: str, entry: _Cached) -> None:
        entry.tried_at = self._clock()
        try:
            entry.keys = self._fetch(url)
            entry.fetched_at = entry.tried_at
        except KeyFetchError as exc:
            log.warning("JWKS fetch failed: %s", exc)

    def _fetch(self, url: str) -> dict[str, VerificationKey]:
        try:
            resp = self._session.get(
                url,
                headers={"Accept": "application/json, application/jwk-set+json"},
                timeout=(self.timeout_s, self.timeout_s),
                allow_redirects=False,
                stream=True,
            )
        except requests.RequestException as exc:
            raise KeyFetchError(f"{url} unreachable ({type(exc).__name__})") from None
        try:
            if resp.status_code != 200:
                raise KeyFetchError(f"{url} answered HTTP {resp.status_code}")
            body = resp.raw.read(MAX_JWKS_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise KeyFetchError(f"{url} failed while reading ({type(exc).__name__})") from None
        finally:
            resp.close()
        if len(body) > MAX_JWKS_BYTES:
            raise KeyFetchError(f"{url} answered more than {MAX_JWKS_BYTES} bytes")
        try:
            return parse_jwks(orjson.loads(body))
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise KeyFetchError(f"{url} did not answer a usable JWK Set ({exc})") from None


def jku_url_problem(url: str, *, development_mode: bool) -> str | None:
    """Why a configured `jku` allow-list entry is unacceptable, or None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and (development_mode or is_loopback(parts.hostname)):
        return None
    return "must be an https URL (plain http only on loopback)"
