"""CDS Hooks 2.0 client authentication: verify the client's signed JWT (spec "Trusting CDS Clients").

Order of checks: header shape and algorithm -> issuer registered -> key (configured JWKS, or an
allow-listed `jku`, checked before anything is fetched) -> signature -> iss, aud, exp/iat/nbf
with clock skew, lifetime, tenant -> jti not seen before. Every failure raises `AuthFailure`
with a reason for the log and a class for the caller (`FAILURE_CLASSES`); the token is never logged.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from ..config import ConfigError, Settings
from .issuers import ASYMMETRIC_ALGORITHMS, Issuer, load_issuers
from .keys import JkuKeyCache, KeyFetchError, VerificationKey
from .replay import ReplayCache, replay_cache_for

MAX_TOKEN_CHARS = 16 * 1024
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")


# What a 401 tells the caller (docs/security.md, "What a 401 says"). Before the signature has
# been verified, a class says nothing that depends on this service's configuration: which issuers,
# algorithms, keys or jku URLs are registered all end in the one class `untrusted-signature`, so an
# unauthenticated caller cannot map the registrations. Only a token whose signature verified with a
# registered key learns which claim is wrong (audience, time, tenant, replay): its holder is a
# registered client, and that is what it needs to fix the call.
FAILURE_CLASSES: dict[str, str] = {
    "missing-token": "no bearer token: send Authorization: Bearer <JWT>",
    "malformed-token": "the token is not a JWT this service reads: a compact JWS with typ JWT, a kid, "
                       "and an asymmetric signing algorithm such as ES384 or RS384",
    "untrusted-signature": "the token's issuer, key or signature is not trusted by this service",
    "invalid-claims": "the token lacks a required claim (iss, aud, exp, iat, jti) or one has an invalid value",
    "audience-mismatch": "token audience does not match this endpoint's public URL",
    "expired-or-not-yet-valid": "token expired, or not yet valid: check the client's clock",
    "lifetime-too-long": "token lifetime (exp - iat) is longer than this service accepts",
    "tenant-not-allowed": "token tenant is not allowed for its issuer",
    "replayed-token": "token already used: send a new token, with a new jti, on every call",
}


class AuthFailure(Exception):
    """The client could not be authenticated. `reason` is for the log only; `kind` (a key of
    FAILURE_CLASSES) is what the caller is told."""

    def __init__(self, reason: str, kind: str = "untrusted-signature") -> None:
        super().__init__(reason)
        assert kind in FAILURE_CLASSES, kind
        self.reason = reason
        self.kind = kind

    @property
    def message(self) -> str:
        return FAILURE_CLASSES[self.kind]


@dataclass(frozen=True)
class ClientIdentity:
    iss: str
    tenant: str | None
    kid: str
    alg: str


def bearer_token(header: str | None) -> str:
    if not header:
        raise AuthFailure("no Authorization header", "missing-token")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthFailure("Authorization header is not 'Bearer <JWT>'", "missing-token")
    return token.strip()


class ClientAuthenticator:
    def __init__(
        self,
        issuers: dict[str, Issuer],
        replay: ReplayCache,
        *,
        jku_cache: JkuKeyCache | None = None,
        clock_skew_s: int = 60,
        max_lifetime_s: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuers = issuers
        self.replay = replay
        self.jku_cache = jku_cache or JkuKeyCache()
        self.clock_skew_s = clock_skew_s
        self.max_lifetime_s = max_lifetime_s
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientAuthenticator:
        issuers = (
            load_issuers(settings.jwt_issuers_path, development_mode=settings.development_mode)
            if settings.jwt_issuers_path
            else {}
        )
        if settings.jwt_clock_skew_s < 0 or settings.jwt_max_lifetime_s <= 0:
            raise ConfigError("jwt_clock_skew_s must be >= 0 and jwt_max_lifetime_s > 0")
        return cls(
            issuers,
            replay_cache_for(settings),
            jku_cache=JkuKeyCache(
                timeout_s=getattr(settings, "jwt_jku_timeout_ms", 2000) / 1000,
                ttl_s=getattr(settings, "jwt_jwks_cache_s", 3600),
                cooldown_s=getattr(settings, "jwt_jwks_refresh_cooldown_s", 30),
            ),
            clock_skew_s=settings.jwt_clock_skew_s,
            max_lifetime_s=settings.jwt_max_lifetime_s,
        )

    def verify(self, token: str, audience: str, *, check_times: bool = True) -> ClientIdentity:
        """The verified client, or AuthFailure. `check_times=False` only for known-answer tests."""
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise AuthFailure("token is not a compact JWS", "malformed-token")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthFailure(f"malformed token ({type(exc).__name__})", "malformed-token") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGORITHMS:
            raise AuthFailure(f"alg {str(alg)[:20]!r} is not an allowed asymmetric algorithm", "malformed-token")
        if not isinstance(header.get("typ"), str) or header["typ"].upper() != "JWT":
            raise AuthFailure("header typ must be 'JWT'", "malformed-token")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthFailure("header kid is missing", "malformed-token")
        if "crit" in header or "b64" in header:
            raise AuthFailure("critical or b64 header extensions are not supported", "malformed-token")  # RFC 7515 4.1.11
        iss = unverified.get("iss")
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None or not isinstance(iss, str):
            raise AuthFailure(f"iss {str(iss)[:200]!r} is not a registered issuer")
        if alg not in issuer.algorithms:
            raise AuthFailure(f"alg {alg} is not configured for issuer {iss}")

        key = self._key(issuer, header, kid)
        if not key.fits(alg):
            raise AuthFailure(f"key {kid[:80]!r} does not fit alg {alg}")
        now = self._clock()
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=audience,
                issuer=iss,
                leeway=self.clock_skew_s,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_exp": check_times,
                    "verify_iat": check_times,
                    "verify_nbf": check_times,
                },
            )
        # PyJWT verifies the signature before any claim: below, the signature is known good
        except jwt.InvalidAudienceError:
            raise AuthFailure(f"aud does not name this endpoint ({audience})", "audience-mismatch") from None
        except jwt.ExpiredSignatureError:
            raise AuthFailure("token expired", "expired-or-not-yet-valid") from None
        except (jwt.ImmatureSignatureError, jwt.InvalidIssuedAtError) as exc:
            raise AuthFailure(f"token not yet valid ({exc})", "expired-or-not-yet-valid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthFailure(f"token rejected ({exc})", "invalid-claims") from None
        except jwt.PyJWTError as exc:  # a bad signature (InvalidSignatureError), or anything else
            raise AuthFailure(f"token rejected ({type(exc).__name__}: {exc})") from None

        exp, iat = float(claims["exp"]), float(claims["iat"])
        if check_times and exp - iat > self.max_lifetime_s:
            raise AuthFailure(f"token lifetime {int(exp - iat)} s exceeds the {self.max_lifetime_s} s allowed", "lifetime-too-long")
        tenant = claims.get("tenant")
        if issuer.tenants and tenant not in issuer.tenants:
            raise AuthFailure(f"tenant {str(tenant)[:100]!r} is not allowed for issuer {iss}", "tenant-not-allowed")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > 512:
            raise AuthFailure("jti must be a non-empty string", "invalid-claims")
        ttl = exp + self.clock_skew_s - now
        if not self.replay.first_use(iss, jti, ttl):
            raise AuthFailure("jti already used (replayed token)", "replayed-token")
        return ClientIdentity(iss=iss, tenant=tenant if isinstance(tenant, str) else None, kid=kid, alg=alg)

    def _key(self, issuer: Issuer, header: dict[str, Any], kid: str) -> VerificationKey:
        jku = header.get("jku")
        if jku is not None:
            # checked before anything is fetched: a jku off the list is never contacted
            if not isinstance(jku, str) or jku not in issuer.jku_allowlist:
                raise AuthFailure(f"jku {str(jku)[:200]!r} is not on the allow-list of issuer {issuer.iss}")
        if issuer.keys is not None:
            found = issuer.keys.get(kid)
            if found is not None:
                return found
            if jku is None or not issuer.jku_allowlist:
                raise AuthFailure(f"kid {kid[:80]!r} is not among the configured keys of {issuer.iss}")
        if jku is None:
            if len(issuer.jku_allowlist) != 1:
                raise AuthFailure(f"token has no jku and issuer {issuer.iss} has no single configured JWKS")
            jku = issuer.jku_allowlist[0]
        try:
            found = self.jku_cache.key(jku, kid)
        except KeyFetchError as exc:
            raise AuthFailure(f"keys of {issuer.iss} unavailable: {exc}") from None
        if found is None:
            raise AuthFailure(f"kid {kid[:80]!r} not found in the JWKS of {issuer.iss}")
        return found
