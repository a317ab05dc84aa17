"""`involves_pump` (the relevance gate's content test, also used by the batch audit): raw FHIR JSON
in, a yes/no out; pure, cheap, never raises on odd input."""
from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType

import pytest

from service.coding.relevance import involves_pump
from service.coding.vocabulary import Vocabulary

ROOT = Path(__file__).resolve().parents[2]
SCT = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
VOCAB = Vocabulary.load()


def order(code: str, system: str = CPT) -> dict:
    return {"resourceType": "ServiceRequest", "status": "draft", "intent": "order",
            "code": {"coding": [{"system": system, "code": code}]}}


def med(route: str, text: str, rtype: str = "MedicationAdministration") -> dict:
    dosage = {"route": {"coding": [{"system": SCT, "code": route}]}}
    body = {"resourceType": rtype, "medicationCodeableConcept": {"text": text}}
    if rtype == "MedicationAdministration":
        body["dosage"] = dosage
    else:
        body["dosageInstruction"] = [dosage]
    return body


@pytest.mark.parametrize("resource", [
    order("62369"), order("95990"), order("62362"),
    order("electronic-analysis", "http://pumpcds.org/fhir/CodeSystem/pump-visit"),
    {"resourceType": "Device", "deviceName": [{"name": "SynchroMed II", "type": "model-name"}]},
    {"resourceType": "Device", "modelNumber": "Prometra II 40 mL"},
    {"resourceType": "Device", "type": {"coding": [{"system": SCT, "code": "118426006"}]}},
    med("72607000", "baclofen 2000 mcg/mL"), med("404820008", "morphine PF", "MedicationRequest"),
    {"resourceType": "ChargeItem", "code": {"coding": [{"system": CPT, "code": "95991"}]}},
    {"resourceType": "Encounter", "type": [{"coding": [{"system": CPT, "code": "62367"}]}]},
], ids=lambda r: r["resourceType"])
def test_pump_content(resource) -> None:
    assert involves_pump([{"resourceType": "Bundle", "entry": [{"resource": resource}]}], VOCAB)
    assert involves_pump([MappingProxyType(resource)], VOCAB)  # any Mapping, not only dict


@pytest.mark.parametrize("resource", [
    order("96523"), order("99213"), order("62367", "http://example.org/local"),
    order("726551006", SCT),
    {"resourceType": "Device", "deviceName": [{"name": "Insulin pump"}]},
    {"resourceType": "Device", "deviceName": [{"name": "Volumetric infusion pump"}]},
    med("47625008", "morphine 4 mg IV"),  # IV morphine: a pump drug, not a pump route
    med("72607000", "bupivacaine 0.5% heavy"),  # a spinal anaesthetic: pump route, not a pump drug
    json.loads((ROOT / "fhir_samples/real_clients/hl7-r4-medadmin0307.json").read_text()),
    json.loads((ROOT / "fhir_samples/real_clients/hl7-r4-medadmin0309.json").read_text()),
], ids=lambda r: r["resourceType"])
def test_no_pump_content(resource) -> None:
    assert not involves_pump([resource], VOCAB)


@pytest.mark.parametrize("junk", [[], [None], ["x"], [{"resourceType": "Bundle", "entry": "x"}],
                                  [{"resourceType": "Bundle", "entry": [None, 3, {"resource": None}]}],
                                  [{"code": {"coding": [{"system": 5, "code": None}]}}]])
def test_odd_json_is_no_not_an_error(junk) -> None:
    assert involves_pump(junk, VOCAB) is False


def test_site_mapped_local_codes_count() -> None:
    mapped = Vocabulary.load(str(ROOT / "fhir_samples" / "site-mapping.example.yaml"))
    local = order("PC-ITP-REFILL", "http://hospital.example.org/fhir/CodeSystem/pain-clinic-procedure")
    assert involves_pump([local], mapped) and not involves_pump([local], VOCAB)
