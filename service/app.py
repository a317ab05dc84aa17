"""Flask application factory."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from flask_cors import CORS
from werkzeug.exceptions import HTTPException

from .api.common import OrjsonProvider
from .api.connection import CloseAfterUnreadBody
from .config import Settings, load_settings
from .errors import ApiError, operation_outcome
from .logging_setup import configure_logging, install_request_logging, request_fields
from .runtime import Runtime
from .security.http import install_client_auth

log = logging.getLogger("pumpcds")

# Responses carry patient-derived data: never cache them, never let a browser sniff them.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}


def create_app(settings: Settings | None = None, **overrides: Any) -> Flask:
    settings = settings or load_settings()
    if overrides:
        settings = settings.with_overrides(**overrides)
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json = OrjsonProvider(app)  # every JSON answer, error handlers included
    app.extensions["pumpcds"] = Runtime.build(settings)
    if settings.development_mode:
        log.warning("development mode: client JWTs are NOT checked and plain-http FHIR servers are allowed")

    CORS(
        app,
        origins=list(settings.cors_origins),
        allow_headers=["Authorization", "Content-Type", "Accept"],
        methods=["GET", "POST", "OPTIONS"],
        max_age=600,
        allow_private_network=True,
    )

    from .api import discovery, docs, feedback, health, hooks, openapi

    for module in (discovery, hooks, feedback, health, openapi, docs):
        app.register_blueprint(module.bp)

    from . import metrics as metrics_module
    from .api import metrics

    app.register_blueprint(metrics.bp)
    if settings.benchmark_baseline:
        from .api import baseline

        app.register_blueprint(baseline.bp)

    # metrics timing first, so refused calls are timed too (issue 6)
    runtime = app.extensions["pumpcds"]
    metrics_module.install_metrics(app, runtime.audit_sinks, runtime.http)
    # request log line first, so refused calls are logged too; then client JWT auth (issue 5)
    install_request_logging(app, app.extensions["pumpcds"].audit_sinks)
    install_client_auth(app, settings)

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> tuple[Response, int]:
        return jsonify(exc.body()), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        messages = {
            404: "no such endpoint; the CDS services are listed at GET /cds-services",
            405: "method not allowed on this endpoint",
            413: f"request body is larger than the {settings.max_body_bytes} bytes this service accepts",
        }
        return jsonify(operation_outcome(status, messages.get(status, exc.description or exc.name))), status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error (%s)", type(exc).__name__, extra=request_fields())
        return jsonify(operation_outcome(500, "internal error; the request was logged")), 500

    @app.after_request
    def _headers(resp: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            resp.headers.setdefault(name, value)
        return resp

    # outermost: it must see every answer, including those of the error handlers
    app.wsgi_app = CloseAfterUnreadBody(app.wsgi_app)  # type: ignore[method-assign]
    return app
