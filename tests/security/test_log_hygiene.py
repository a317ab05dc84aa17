"""Logs hold no patient data and no tokens: checked over the log lines of the WHOLE test run.

This test runs last (marker `run_last`). It first sends every sample request in
fhir_samples/requests/ and a synthetic request full of patient data (prefetched and fetched from
a loopback EHR) over real HTTP, with and without client authentication, then scans every log
line the session produced — formatted and raw — for the patient-data markers and for every JWT
and FHIR access token the tests used.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from service.app import create_app
from service.cdshooks.services import build_services, service_for_hook
from service.config import load_settings
from service.devtools.fhir_server import FhirTestServer

from .logcapture import SESSION_LOG
from .phi import (
    FHIR_ACCESS_TOKEN,
    SAMPLES,
    fhir_server_resources,
    listed_markers,
    markers_in,
    sample_documents,
    sample_requests,
    synthetic_markers,
    synthetic_request,
)
from .tokens import MINTED, auth, mint

SERVICE = Path(__file__).resolve().parents[2] / "service"
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}")


def service_path(body: dict) -> str:
    service = service_for_hook(build_services(load_settings(environ={})), body.get("hook"))
    return f"/cds-services/{service.id}"


def send_everything(base_url: str, ehr_base: str, with_jwt: bool) -> list[int]:
    bodies = [body for _, body in sample_requests()] + [synthetic_request(ehr_base)]
    for body in bodies:
        if "fhirServer" in body:  # never the internet: the samples' data is served on loopback
            body["fhirServer"] = ehr_base
    statuses = []
    for body in bodies:
        path = service_path(body)
        headers = auth(mint(path)) if with_jwt else {}
        statuses.append(requests.post(base_url + path, json=body, headers=headers, timeout=30).status_code)
        feedback = {"feedback": [{"card": "4e0a3a1e-3283-4575-ab82-028d55fe2719", "outcome": "overridden",
                                  "outcomeTimestamp": "2026-11-20T10:05:31Z"}]}
        headers = auth(mint(path + "/feedback")) if with_jwt else {}
        requests.post(base_url + path + "/feedback", json=feedback, headers=headers, timeout=30)
    # a malformed call that quotes patient data back in the error answer
    bad = synthetic_request(ehr_base)
    bad["context"]["userId"] = "Marigold Featherstonehaugh-Quillfeather"
    requests.post(base_url + service_path(bad), json=bad, headers=auth(mint(service_path(bad))) if with_jwt else {},
                  timeout=30)
    return statuses


@pytest.mark.run_last
def test_logs_of_the_whole_run_hold_no_patient_data_or_tokens(settings, secure_settings, live_server_factory):
    ehr = FhirTestServer()
    ehr.add(fhir_server_resources())
    if (SAMPLES / "fhir_server").is_dir():
        ehr.load_dir(SAMPLES / "fhir_server")
    ehr_base = f"{live_server_factory(ehr.wsgi()).url}/fhir"

    dev = live_server_factory(create_app(settings))
    statuses = send_everything(dev.url, ehr_base, with_jwt=False)
    assert statuses[-1] == 200, "the synthetic request must be answered, or this test proves little"
    assert any(r.headers.get("Authorization") == f"Bearer {FHIR_ACCESS_TOKEN}" for r in ehr.requests)
    secure = live_server_factory(create_app(secure_settings.with_overrides(
        public_base_url="https://cds.test.example")))
    send_everything(secure.url, ehr_base, with_jwt=True)

    lines = SESSION_LOG.lines + SESSION_LOG.raw
    assert any('"logger": "pumpcds.request"' in line or '"logger":"pumpcds.request"' in line for line in lines)
    text = "\n".join(lines)

    markers = listed_markers() | synthetic_markers()
    for document in sample_documents():
        markers |= markers_in(document)
    # a "marker" that is also in the service's own code (e.g. a display of "Patient") is not patient data
    vocabulary = "\n".join(p.read_text(errors="ignore") for p in SERVICE.rglob("*") if p.is_file()
                           and p.suffix in {".py", ".yaml", ".yml", ".json", ".md", ".txt"})
    markers = {m for m in markers if m in synthetic_markers() or m not in vocabulary}
    leaked = sorted(m for m in markers if m in text)
    assert leaked == [], f"patient data in logs: {leaked[:10]}"

    for token in MINTED:
        payload, signature = token.split(".")[1:]
        assert token not in text and (not signature or signature not in text) and payload not in text
    assert JWT_SHAPE.search(text) is None, "something shaped like a JWT was logged"
    assert FHIR_ACCESS_TOKEN not in text
