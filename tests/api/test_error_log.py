"""A 500 is found in the logs by the request id the client got back (issue 12)."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import load_sample
from tests.security.logcapture import LogCapture

ORDER_SIGN = "/cds-services/pump-visit-coding-order-sign"


@pytest.fixture
def lines() -> Iterator[list[str]]:
    """Log lines as the service's JSON formatter writes them, formatted when emitted (in the request)."""
    capture = LogCapture()
    root = logging.getLogger()
    root.addHandler(capture)
    try:
        yield capture.lines
    finally:
        root.removeHandler(capture)


@pytest.fixture
def failing_engine(app) -> None:
    """A fault in the coding step that no handler expects; its message quotes patient data."""
    runtime = app.extensions["pumpcds"]

    def boom(resources: Any) -> Any:
        logging.getLogger("pumpcds.engine").warning("assessing visit")
        raise RuntimeError("Jane Example born 1950-01-01")

    runtime.engine.assess = boom


def entries(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


@pytest.mark.usefixtures("failing_engine")
@pytest.mark.parametrize("sent_id", ["req-500-a", None, "not an id; Jane"])
def test_the_500_line_carries_the_request_id_of_the_answer(client, lines, sent_id):
    headers = {"X-Request-ID": sent_id} if sent_id else {}
    resp = client.post(ORDER_SIGN, json=load_sample("requests/order-sign-62367-analysis-only.json"), headers=headers)
    assert resp.status_code == 500
    request_id = resp.headers["X-Request-ID"]
    if sent_id == "req-500-a":
        assert request_id == sent_id
    else:
        assert len(request_id) == 32  # a new id when the client sent none, or something that is not an id
    [error] = [e for e in entries(lines) if e.get("exc_type") == "RuntimeError"]
    assert error["request_id"] == request_id
    assert error["method"] == "POST" and error["path"] == ORDER_SIGN
    assert "Jane" not in json.dumps(error)
    # the request line and every other line logged while serving it name the same request
    [summary] = [e for e in entries(lines) if e["logger"] == "pumpcds.request"]
    assert summary["request_id"] == request_id and summary["status"] == 500
    [inner] = [e for e in entries(lines) if e["logger"] == "pumpcds.engine"]
    assert inner["request_id"] == request_id


def test_lines_outside_a_request_have_no_request_id(lines):
    logging.getLogger("pumpcds").warning("start-up line")
    [entry] = [e for e in entries(lines) if e["msg"] == "start-up line"]
    assert "request_id" not in entry


@pytest.mark.parametrize("what, body", [
    ("a pump visit with cards", load_sample("requests/order-sign-62368-billed-as-62367.json")),
    ("an unrelated order", load_sample("real_clients/inferno-crd-order-sign-hook-request.json")),
    ("a refused request", {"hook": "order-sign"}),
])
def test_one_line_per_request_at_info(client, lines, what, body):
    """At INFO a hook call writes exactly one line, the request summary (issue 13: one log line per request)."""
    logger = logging.getLogger("pumpcds")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        client.post(ORDER_SIGN, json=body)
    finally:
        logger.setLevel(level)
    pumpcds = [e for e in entries(lines) if e["logger"].startswith("pumpcds")]
    assert [e["logger"] for e in pumpcds] == ["pumpcds.request"], (what, pumpcds)
