"""The `pumpcds` console script, run as a newcomer would run it."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

PUMPCDS = shutil.which("pumpcds", path=str(Path(sys.executable).parent)) or "pumpcds"


def run(*args, env=None, timeout=60):
    return subprocess.run([PUMPCDS, *args], capture_output=True, text=True, timeout=timeout, env=env)


def clean_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUMPCDS_") and k not in ("DATABASE_URL", "REDIS_URL")}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    return env


def strip_uuids(node):
    if isinstance(node, dict):
        return {k: strip_uuids(v) for k, v in node.items() if k != "uuid" and k != "id"}
    if isinstance(node, list):
        return [strip_uuids(v) for v in node]
    return node


def request_file(tmp_path):
    body = {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/p1", "patientId": "pat-1",
                    "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": {
                        "resourceType": "ServiceRequest", "id": "sr-1", "status": "draft", "intent": "order",
                        "subject": {"reference": "Patient/pat-1"},
                        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62369"}]}}}]}},
        "prefetch": {"device": None, "procedures": None},
    }
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    return path, body


def test_evaluate_prints_the_same_answer_as_http(tmp_path, client):
    path, body = request_file(tmp_path)
    proc = run("evaluate", str(path), env=clean_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    via_cli = json.loads(proc.stdout)
    via_http = client.post("/cds-services/pump-visit-coding-order-sign", json=body).get_json()
    assert strip_uuids(via_cli) == strip_uuids(via_http)


def test_evaluate_strict_validates_every_resource_with_the_r4_models(tmp_path):
    """A procedure whose `note` is not a list of Annotations: no fact reads it, so the default
    (fhir_validation: off) uses it; --strict skips it and says so on the data card."""
    path, body = request_file(tmp_path)
    body["prefetch"]["procedures"] = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
        "resourceType": "Procedure", "id": "p-1", "status": "completed", "subject": {"reference": "Patient/pat-1"},
        "code": {"coding": [{"system": "http://pumpcds.org/fhir/CodeSystem/pump-visit", "code": "refill"}]},
        "note": "free text where R4 wants a list"}}]}
    path.write_text(json.dumps(body))

    def data_card(*flags):
        proc = run("evaluate", *flags, str(path), env=clean_env(tmp_path))
        assert proc.returncode == 0, proc.stderr
        return json.dumps([c for c in json.loads(proc.stdout)["cards"] if c["extension"]["pumpcds"]["ruleId"] == "DQ-INPUT"])

    assert "rocedure records: 1 entry could not be read" in data_card("--strict")
    assert "rocedure records" not in data_card()


def test_evaluate_reports_errors_with_nonzero_exit(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"hook": "order-sign"}))
    proc = run("evaluate", str(path), env=clean_env(tmp_path))
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["resourceType"] == "OperationOutcome"


def test_evaluate_unreadable_file(tmp_path):
    proc = run("evaluate", str(tmp_path / "missing.json"), env=clean_env(tmp_path))
    assert proc.returncode == 2 and "cannot read" in proc.stderr


def test_schemas_writes_every_schema(tmp_path):
    proc = run("schemas", "--out", str(tmp_path / "schemas"), env=clean_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert "request.schema.json" in names and "response.schema.json" in names
    for p in (tmp_path / "schemas").iterdir():
        assert json.loads(p.read_text())["$schema"].endswith("2020-12/schema")


def test_bad_configuration_is_a_clear_message(tmp_path):
    env = clean_env(tmp_path)
    env["PUMPCDS_ENCOUNTER_CLOSE_HOOK"] = "encounter-close"
    path, _ = request_file(tmp_path)
    proc = run("evaluate", str(path), env=env)
    assert proc.returncode == 2 and "reverse-domain" in proc.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_a_working_service(tmp_path):
    port = free_port()
    proc = subprocess.Popen([PUMPCDS, "serve", "--port", str(port)], env=clean_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                resp = requests.get(f"http://127.0.0.1:{port}/cds-services", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("service did not start: " + (proc.stderr.read() if proc.poll() is not None else "timeout"))
                time.sleep(0.2)
        assert resp.status_code == 200
        assert {s["id"] for s in resp.json()["services"]} == {"pump-visit-coding-order-sign", "pump-visit-coding-encounter-discharge",
                                                             "pump-visit-coding-encounter-close"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
