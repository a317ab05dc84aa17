"""Structured logs: one JSON line per request with the agreed fields, and nothing secret in any line."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from service.logging_setup import JsonFormatter, scrub

from .conftest import ORDER_SIGN, order_sign_body
from .tokens import auth, mint

ROOT = Path(__file__).resolve().parents[2]


def request_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pumpcds.request"]


def test_one_line_per_hook_call_with_ids_counts_and_rules(client, caplog):
    caplog.set_level(logging.INFO)
    body = order_sign_body()
    resp = client.post(ORDER_SIGN, json=body, headers={"X-Request-ID": "req-42"})
    assert resp.status_code == 200
    [record] = request_lines(caplog)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["logger"] == "pumpcds.request" and entry["msg"] == "request"
    assert entry["request_id"] == "req-42"
    assert entry["service"] == "pump-visit-coding-order-sign"
    assert entry["hook_instance"] == body["hookInstance"]
    assert entry["status"] == 200 and entry["method"] == "POST" and entry["path"] == ORDER_SIGN
    assert isinstance(entry["latency_ms"], float)
    assert isinstance(entry["rule_ids"], list) and isinstance(entry["codes"], list)
    assert entry["cards"] == len(resp.get_json()["cards"])
    assert entry["fhir_calls"] == 0


def test_refused_calls_are_logged_with_the_issuer_of_accepted_ones(secure_client, caplog):
    caplog.set_level(logging.INFO)
    secure_client.get("/cds-services")
    secure_client.get("/cds-services", headers=auth(mint("/cds-services")))
    refused, accepted = (json.loads(JsonFormatter().format(r)) for r in request_lines(caplog))
    assert refused["status"] == 401 and refused["auth"] == "rejected"
    assert accepted["status"] == 200 and accepted["client_iss"] == "https://ehr-es.test.example"


def test_hook_instance_that_is_not_an_id_is_not_logged(client, caplog):
    caplog.set_level(logging.INFO)
    body = order_sign_body()
    body["hookInstance"] = "Jane Example born 1950-01-01"
    client.post(ORDER_SIGN, json=body)
    [record] = request_lines(caplog)
    assert "Jane" not in JsonFormatter().format(record)


def test_exception_messages_are_left_out_of_tracebacks():
    try:
        raise ValueError("birthDate 1950-01-01 of Jane Example is invalid")
    except ValueError:
        record = logging.LogRecord("pumpcds", logging.ERROR, __file__, 1, "failed (%s)", ("ValueError",), sys.exc_info())
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["exc_type"] == "ValueError" and entry["exc_frames"]
    assert "Jane" not in line and "1950" not in line


def test_jwts_and_bearer_credentials_are_masked_in_any_message():
    token = mint("/cds-services")
    text = scrub(f"got {token} and Authorization: Bearer abcdefgh12345678 and access_token=xyz12345")
    assert token not in text and "abcdefgh12345678" not in text and "xyz12345" not in text
    assert "[jwt]" in text and "[redacted]" in text


def test_a_fresh_process_logs_json_lines_to_stderr(tmp_path):
    script = (
        "from service.app import create_app\n"
        "from service.config import load_settings\n"
        f"app = create_app(load_settings(environ={{}}, database_url='sqlite:///{tmp_path}/x.db'))\n"
        "app.test_client().get('/cds-services')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    entries = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert any(e["level"] == "WARNING" and "development mode" in e["msg"] for e in entries)
    [request] = [e for e in entries if e["logger"] == "pumpcds.request"]
    assert request["path"] == "/cds-services" and request["status"] == 200
