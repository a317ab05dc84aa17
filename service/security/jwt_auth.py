"""CDS Hooks 2.0 client authentication: verify the client's signed JWT (spec "Trusting CDS Clients").

Order of checks: header shape and algorithm -> issuer registered -> key (configured JWKS, or an
allow-listed `jku`, checked before anything is fetched) -> signature -> iss, aud, exp/iat/nbf
with clock skew, lifetime, tenant -> jti not seen before. Every failure raises `AuthFailure`
with a reason for the log; callers answer 401 without detail and never log the token.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import jwt

from ..config import ConfigError, Settings
from .issuers import ASYMMETRIC_ALGORITHMS, Issuer, load_issuers
from .keys import JkuKeyCache, KeyFetchError, VerificationKey
from .replay import ReplayCache, replay_cache_for

MAX_TOKEN_CHARS = 16 * 1024
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")


class AuthFailure(Exception):
    """The client could not be authenticated. `reason` is for the log only, never the response."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ClientIdentity:
    iss: str
    tenant: str | None
    kid: str
    alg: str


def bearer_token(header: str | None) -> str:
    if not header:
        raise AuthFailure("no Authorization header")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthFailure("Authorization header is not 'Bearer <JWT>'")
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
    def from_settings(cls, settings: Settings) -> "ClientAuthenticator":
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
            raise AuthFailure("token is not a compact JWS")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthFailure(f"malformed token ({type(exc).__name__})") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGORITHMS:
            raise AuthFailure(f"alg {str(alg)[:20]!r} is not an allowed asymmetric algorithm")
        if not isinstance(header.get("typ"), str) or header["typ"].upper() != "JWT":
            raise AuthFailure("header typ must be 'JWT'")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthFailure("header kid is missing")
        if "crit" in header or "b64" in header:
            raise AuthFailure("critical or b64 header extensions are not supported")  # RFC 7515 4.1.11
        iss = unverified.get("iss")
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
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
        except jwt.InvalidAudienceError:
            raise AuthFailure(f"aud does not name this endpoint ({audience})") from None
        except jwt.ExpiredSignatureError:
            raise AuthFailure("token expired") from None
        except jwt.ImmatureSignatureError as exc:
            raise AuthFailure(f"token not yet valid ({exc})") from None
        except jwt.PyJWTError as exc:
            raise AuthFailure(f"token rejected ({type(exc).__name__}: {exc})") from None

        exp, iat = float(claims["exp"]), float(claims["iat"])
        if check_times and exp - iat > self.max_lifetime_s:
            raise AuthFailure(f"token lifetime {int(exp - iat)} s exceeds the {self.max_lifetime_s} s allowed")
        tenant = claims.get("tenant")
        if issuer.tenants and tenant not in issuer.tenants:
            raise AuthFailure(f"tenant {str(tenant)[:100]!r} is not allowed for issuer {iss}")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > 512:
            raise AuthFailure("jti must be a non-empty string")
        ttl = exp + self.clock_skew_s - now
        if not self.replay.first_use(iss, jti, ttl):
            raise AuthFailure("jti already used (replayed token)")
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
