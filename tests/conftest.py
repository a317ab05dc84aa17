"""Shared fixtures: the real app, a real HTTP server on loopback, and sample loading."""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from werkzeug.serving import make_server

from service.app import create_app
from service.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "fhir_samples"

# Hypothesis (fuzz, contract and property tests) draws the same examples on every run, so CI is
# repeatable; PUMPCDS_HYPOTHESIS_PROFILE=explore draws new ones.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False, database=None)
hypothesis_settings.load_profile(os.environ.get("PUMPCDS_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def settings(tmp_path: Path):
    """Development-mode settings on a throw-away SQLite file, independent of the environment."""
    return load_settings(environ={}, database_url=f"sqlite:///{tmp_path / 'pumpcds.db'}")


def response_problems(body: Any) -> list[str]:
    """Every CDS Hooks 2.0 response rule we can check: the JSON Schema plus the invariants checker."""
    from service.cdshooks.validation import validator

    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator("response").iter_errors(body)]
    try:
        from service.cdshooks.response import check_response
    except ImportError:
        return problems
    return problems + [p for p in check_response(body) if p not in problems]


def install_response_check(flask_app: Any) -> list[str]:
    """Check every 200 answer of a hook endpoint this app gives during a test."""
    problems: list[str] = []

    @flask_app.after_request
    def _check(resp):  # type: ignore[no-untyped-def]
        from flask import request

        parts = request.path.strip("/").split("/")
        if request.method == "POST" and len(parts) == 2 and parts[0] == "cds-services" and resp.status_code == 200:
            problems.extend(f"{request.path}: {p}" for p in response_problems(json.loads(resp.get_data())))
        return resp

    return problems


@pytest.fixture
def app(settings):
    flask_app = create_app(settings)
    problems = install_response_check(flask_app)
    yield flask_app
    assert problems == [], "non-conformant CDS Hooks responses: " + "; ".join(problems[:5])


@pytest.fixture
def client(app):
    return app.test_client()


class LiveServer:
    def __init__(self, wsgi_app: Any) -> None:
        self._server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


@pytest.fixture
def live_server_factory() -> Iterator[Callable[[Any], LiveServer]]:
    """Start any WSGI app on a loopback port; all are shut down after the test."""
    started: list[LiveServer] = []

    def start(wsgi_app: Any) -> LiveServer:
        server = LiveServer(wsgi_app).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)


@pytest.fixture
def live_server(app, live_server_factory):
    return live_server_factory(app)


def load_sample(relative: str) -> Any:
    return json.loads((SAMPLES / relative).read_text())


# --- issue 5: session-wide log capture, checked for patient data and tokens by a test run last ---


def pytest_configure(config):  # type: ignore[no-untyped-def]
    config.addinivalue_line("markers", "run_last: run after every other test (log hygiene over the whole run)")


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    items.sort(key=lambda item: item.get_closest_marker("run_last") is not None)


@pytest.fixture(scope="session", autouse=True)
def session_log_capture():
    import logging

    from tests.security.logcapture import SESSION_LOG

    root = logging.getLogger()
    root.addHandler(SESSION_LOG)
    yield SESSION_LOG
    root.removeHandler(SESSION_LOG)
