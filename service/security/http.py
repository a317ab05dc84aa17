"""Wire client authentication and the extra security headers into the Flask app.

Protected: everything under /cds-services (discovery, services, feedback), except CORS
preflights (OPTIONS carries no token). Health, metrics, OpenAPI and documentation pages are open.
The JWT `aud` is checked against `public_base_url` + the request path, never `request.url`,
which is wrong behind a TLS-terminating proxy.
"""
from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..config import Settings
from .jwt_auth import FAILURE_CLASSES, AuthFailure, ClientAuthenticator, bearer_token
from .replay import RETRY_AFTER_S, ReplayStoreUnavailable

log = logging.getLogger("pumpcds.security")

PROTECTED_ROOT = "/cds-services"

AUTH_FAILURE_SYSTEM = "http://pumpcds.org/fhir/CodeSystem/auth-failure"
UNAVAILABLE_BODY = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "transient", "diagnostics": "authentication temporarily unavailable"}],
}


def is_protected(path: str) -> bool:
    return path == PROTECTED_ROOT or path.startswith(PROTECTED_ROOT + "/")


def endpoint_audience(settings: Settings, path: str) -> str:
    return settings.public_base_url.rstrip("/") + path


def install_client_auth(app: Flask, settings: Settings) -> ClientAuthenticator | None:
    """Require a valid client JWT on protected routes unless in development mode."""
    _install_headers(app, settings)
    if settings.development_mode:
        _install_streamed_body_limit(app)
        return None  # the development-mode warning is logged once, by create_app
    authenticator = ClientAuthenticator.from_settings(settings)
    if not authenticator.issuers:
        log.error("no JWT issuers registered (jwt_issuers_path): every call to /cds-services will be refused")
    app.extensions["pumpcds.auth"] = authenticator

    @app.before_request
    def _require_client_jwt() -> tuple[Response, int] | None:
        if request.method == "OPTIONS" or not is_protected(request.path):
            return None
        try:
            token = bearer_token(request.headers.get("Authorization"))
            client = authenticator.verify(token, endpoint_audience(settings, request.path))
        except AuthFailure as failure:
            g.auth_failure = failure.reason
            log.warning("client JWT rejected (%s): %s", failure.kind, failure.reason)
            resp = jsonify(unauthorized_body(failure.kind))
            resp.headers["WWW-Authenticate"] = www_authenticate(failure.kind)
            return resp, 401
        except ReplayStoreUnavailable as exc:
            log.error("client JWT not checked: %s", exc)
            unavailable = jsonify(UNAVAILABLE_BODY)
            unavailable.headers["Retry-After"] = str(RETRY_AFTER_S)
            return unavailable, 503
        g.client_iss = client.iss
        g.client_tenant = client.tenant
        return None

    _install_streamed_body_limit(app)
    return authenticator


def unauthorized_body(kind: str) -> dict[str, object]:
    """The 401 body: the failure's class and its fixed sentence, never the log reason."""
    message = FAILURE_CLASSES[kind]
    return {
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": "error",
            "code": "login",
            "details": {"coding": [{"system": AUTH_FAILURE_SYSTEM, "code": kind}], "text": message},
            "diagnostics": f"authentication failed: {message}",
        }],
    }


def www_authenticate(kind: str) -> str:
    """RFC 6750 section 3: no error code when no token was sent, else invalid_token."""
    if kind == "missing-token":
        return 'Bearer realm="cds-services"'
    return f'Bearer realm="cds-services", error="invalid_token", error_description="{FAILURE_CLASSES[kind]}"'


def _install_streamed_body_limit(app: Flask) -> None:
    """413 for a chunked body over MAX_CONTENT_LENGTH (Werkzeug would silently truncate it)."""

    @app.before_request
    def _limit_streamed_body() -> None:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        if not limit or request.content_length is not None or request.method in ("GET", "HEAD", "OPTIONS"):
            return
        data = request.get_data(cache=True)  # reads at most `limit` bytes, kept for the view
        if len(data) >= limit and request.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()


def _install_headers(app: Flask, settings: Settings) -> None:
    https = settings.public_base_url.startswith("https://")

    @app.after_request
    def _no_store(resp: Response) -> Response:
        # Answers can carry patient data: no cache, proxy or browser history may keep them.
        resp.headers.setdefault("Cache-Control", "no-store")
        resp.headers.setdefault("Pragma", "no-cache")
        resp.headers.setdefault("Expires", "0")
        if https:
            resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return resp
