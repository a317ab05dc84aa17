"""Synthetic order-sign requests of N resources, built from a realistic pump-refill visit.

The visit: a signed refill order (ServiceRequest) for an implanted intrathecal pump, the pump
(Device), the payer (Coverage), the ordering practitioner and role, and a history of pump
procedures, reservoir/dose observations and drug administrations. Growing N adds history in
the proportions a long-treated patient has (procedures : observations : administrations =
1 : 2 : 1), which is what makes a visit "large" in practice. All data is synthetic.
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from service.cdshooks.services import ORDER_SIGN_SERVICE_ID

PATIENT = "bench-pat-1"
ENCOUNTER = "bench-enc-1"
PRACTITIONER = "bench-prac-1"
CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SIZES = {"small": 5, "typical": 30, "large": 300}
FIXED_RESOURCES = 4  # draft order, device, coverage, practitioner (+ a practitioner role from 10 up)

_PUMP_CODES = ("62367", "62368", "62369", "62370", "95990", "95991")


def _day(i: int) -> str:
    return (dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC) - dt.timedelta(days=28 * i)).isoformat()


def draft_refill_order() -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest", "id": "bench-sr-1", "status": "draft", "intent": "order",
        "code": {"coding": [{"system": CPT, "code": "62370"}], "text": "Pump refill with reprogramming"},
        "subject": {"reference": f"Patient/{PATIENT}"}, "encounter": {"reference": f"Encounter/{ENCOUNTER}"},
        "requester": {"reference": f"Practitioner/{PRACTITIONER}"}, "authoredOn": _day(0),
    }


def device() -> dict[str, Any]:
    return {
        "resourceType": "Device", "id": "bench-pump-1", "status": "active",
        "patient": {"reference": f"Patient/{PATIENT}"}, "manufacturer": "Medtronic",
        "deviceName": [{"name": "SynchroMed II", "type": "model-name"}],
        "type": {"coding": [{"system": "http://snomed.info/sct", "code": "700654006"}]},
        "property": [{"type": {"text": "reservoir volume"},
                      "valueQuantity": [{"value": 40, "unit": "mL", "system": UCUM, "code": "mL"}]}],
    }


def coverage() -> dict[str, Any]:
    return {
        "resourceType": "Coverage", "id": "bench-cov-1", "status": "active",
        "beneficiary": {"reference": f"Patient/{PATIENT}"},
        "payor": [{"display": "Medicare Part B"}],
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "SUBSIDIZ"}]},
    }


def practitioner() -> dict[str, Any]:
    return {
        "resourceType": "Practitioner", "id": PRACTITIONER,
        "qualification": [{"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0360",
                                                  "code": "MD"}]}}],
    }


def practitioner_role() -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole", "id": "bench-role-1", "active": True,
        "practitioner": {"reference": f"Practitioner/{PRACTITIONER}"},
        "specialty": [{"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": "208VP0000X"}]}],
    }


def procedure(i: int) -> dict[str, Any]:
    return {
        "resourceType": "Procedure", "id": f"bench-proc-{i}", "status": "completed",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "encounter": {"reference": f"Encounter/{ENCOUNTER if i == 0 else f'bench-enc-old-{i}'}"},
        "code": {"coding": [{"system": CPT, "code": _PUMP_CODES[i % len(_PUMP_CODES)]}]},
        "performedDateTime": _day(i), "performer": [{"actor": {"reference": f"Practitioner/{PRACTITIONER}"}}],
        "focalDevice": [{"manipulated": {"reference": "Device/bench-pump-1"}}],
    }


def observation(i: int) -> dict[str, Any]:
    code, value, unit = (("19919-2", 38.5, "mL") if i % 2 == 0 else ("80339-3", 0.2, "mg/d"))
    return {
        "resourceType": "Observation", "id": f"bench-obs-{i}", "status": "final",
        "subject": {"reference": f"Patient/{PATIENT}"}, "encounter": {"reference": f"Encounter/{ENCOUNTER}"},
        "code": {"coding": [{"system": LOINC, "code": code}]}, "effectiveDateTime": _day(i // 2),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        "device": {"reference": "Device/bench-pump-1"},
    }


def medication_administration(i: int) -> dict[str, Any]:
    return {
        "resourceType": "MedicationAdministration", "id": f"bench-ma-{i}", "status": "completed",
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                  "code": "7052"}], "text": "morphine intrathecal"},
        "subject": {"reference": f"Patient/{PATIENT}"}, "context": {"reference": f"Encounter/{ENCOUNTER}"},
        "effectiveDateTime": _day(i),
        "dosage": {"route": {"coding": [{"system": "http://snomed.info/sct", "code": "72607000"}]},
                   "dose": {"value": 20, "unit": "mL", "system": UCUM, "code": "mL"}},
        "device": [{"reference": "Device/bench-pump-1"}],
    }


def _searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r, "search": {"mode": "match"}}
                      for r in resources]}


def history_counts(n: int) -> tuple[int, int, int]:
    """(procedures, observations, administrations) so that the visit holds n resources in all."""
    extra = max(1, n - FIXED_RESOURCES - (1 if n >= 10 else 0))
    procedures = max(1, extra // 4)
    administrations = extra // 4
    observations = extra - procedures - administrations
    return procedures, observations, administrations


def order_sign_request(n: int) -> dict[str, Any]:
    """A CDS Hooks order-sign request for ``pump-visit-coding-order-sign`` carrying n resources."""
    procedures, observations, administrations = history_counts(n)
    return {
        "hook": "order-sign",
        "hookInstance": str(uuid.uuid4()),
        "context": {
            "userId": f"Practitioner/{PRACTITIONER}", "patientId": PATIENT, "encounterId": ENCOUNTER,
            "draftOrders": {"resourceType": "Bundle", "type": "collection",
                            "entry": [{"resource": draft_refill_order()}]},
        },
        "prefetch": {
            "procedures": _searchset([procedure(i) for i in range(procedures)]),
            "observations": _searchset([observation(i) for i in range(observations)]),
            "medicationAdministrations": _searchset([medication_administration(i) for i in range(administrations)]),
            "device": _searchset([device()]),
            "coverage": _searchset([coverage()]),
            "practitioner": practitioner(),
            "practitionerRoles": _searchset([practitioner_role()] if n >= 10 else []),
        },
    }


def resource_count(body: dict[str, Any]) -> int:
    count = len(body["context"]["draftOrders"]["entry"])
    for value in body["prefetch"].values():
        count += len(value.get("entry", [])) if value.get("resourceType") == "Bundle" else 1
    return count


SERVICE_ID = ORDER_SIGN_SERVICE_ID
