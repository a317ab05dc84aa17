"""Patient data markers: strings that must never reach a log line.

Collected from (1) `fhir_samples/PHI_MARKERS.txt` (one marker per line, # comments), (2) every
sample request and FHIR resource under `fhir_samples/` (names, birth dates, note and narrative
text, identifier values, telecom values, display strings of patient references) and (3) the
synthetic patient below, whose data is deliberately unusual so a leak cannot hide.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fhir_samples"

PATIENT_NAME = ("Marigold", "Featherstonehaugh-Quillfeather")
BIRTH_DATE = "1947-02-28"
MRN = "MRN-88231-QZ"
NOTE = "Pump pocket tender; patient Marigold worried about her granddaughter Ysolde"
ORDER_NOTE = "Refill with baclofen 2000 mcg/mL, Marigold prefers afternoon visits"
FHIR_ACCESS_TOKEN = "fhir-phi-test-token-" + uuid.uuid4().hex


def _walk(node: Any, parent_key: str = "") -> Iterator[tuple[str, str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield parent_key, key, value
            yield from _walk(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, parent_key)


def markers_in(document: Any) -> set[str]:
    found: set[str] = set()
    for parent, key, value in _walk(document):
        texts = value if isinstance(value, list) else [value]
        texts = [t for t in texts if isinstance(t, str)]
        if key in {"family", "given", "birthDate", "div", "patientInstruction", "access_token"}:
            found.update(texts)
        elif key == "text" and parent in {"note", "name"}:
            found.update(texts)
        elif key == "value" and parent in {"identifier", "telecom"}:
            found.update(texts)
        elif key == "display" and parent in {"subject", "patient", "beneficiary"}:
            found.update(texts)
    # short all-digit values (a practitioner's 5-digit id in the public Da Vinci example) cannot be
    # told apart from ephemeral ports and counters in log lines; 7 digits and more still count
    return {m.strip() for m in found if len(m.strip()) >= 5 and not (m.strip().isdigit() and len(m.strip()) < 7)}


def sample_documents() -> list[Any]:
    docs = []
    if SAMPLES.is_dir():
        for path in sorted(SAMPLES.rglob("*.json")):
            try:
                docs.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
    return docs


def sample_requests() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted((SAMPLES / "requests").glob("*.json")) if (SAMPLES / "requests").is_dir() else []:
        try:
            body = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(body, dict) and "hook" in body:
            out.append((path.name, body))
    return out


def listed_markers() -> set[str]:
    path = SAMPLES / "PHI_MARKERS.txt"
    if not path.is_file():
        return set()
    lines = (line.strip() for line in path.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def synthetic_request(fhir_server: str) -> dict[str, Any]:
    """An order-sign call full of patient data, half prefetched, half to be fetched from fhirServer."""
    subject = {"reference": "Patient/pat-phi", "display": " ".join(PATIENT_NAME),
               "identifier": {"system": "urn:oid:1.2.3.4", "value": MRN}}
    order = {
        "resourceType": "ServiceRequest", "id": "sr-phi", "status": "draft", "intent": "order",
        "subject": subject,
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62369"}]},
        "note": [{"text": ORDER_NOTE}],
        "patientInstruction": "Marigold should bring her pump card and diary",
    }
    return {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": fhir_server,
        "fhirAuthorization": {"access_token": FHIR_ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300,
                              "scope": "patient/*.read", "subject": "pumpcds"},
        "context": {"userId": "Practitioner/prac-phi", "patientId": "pat-phi",
                    "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}},
        "prefetch": {
            "procedures": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
                "resourceType": "Procedure", "id": "proc-phi", "status": "completed", "subject": subject,
                "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62369"}]},
                "performedDateTime": "2026-11-20T10:00:00-05:00",
                "note": [{"text": NOTE}]}}]},
        },
    }


def fhir_server_resources() -> list[dict[str, Any]]:
    """What the loopback EHR holds for the synthetic patient (fetched because prefetch lacks it)."""
    return [
        {"resourceType": "Patient", "id": "pat-phi", "birthDate": BIRTH_DATE,
         "name": [{"family": PATIENT_NAME[1], "given": [PATIENT_NAME[0]]}],
         "identifier": [{"system": "urn:oid:1.2.3.4", "value": MRN}]},
        {"resourceType": "Device", "id": "pump-phi", "status": "active",
         "patient": {"reference": "Patient/pat-phi", "display": " ".join(PATIENT_NAME)},
         "note": [{"text": "Implanted 2019; " + NOTE}]},
        {"resourceType": "Observation", "id": "obs-phi", "status": "final",
         "subject": {"reference": "Patient/pat-phi", "display": " ".join(PATIENT_NAME)},
         "code": {"text": "reservoir volume"}, "valueString": "18 mL",
         "note": [{"text": "Marigold says the alarm woke her at 3 am"}]},
    ]


def synthetic_markers() -> set[str]:
    return {PATIENT_NAME[0], PATIENT_NAME[1], BIRTH_DATE, MRN, NOTE, ORDER_NOTE, FHIR_ACCESS_TOKEN,
            "Ysolde", "granddaughter", "afternoon visits", "pump card and diary", "woke her at 3 am"}
