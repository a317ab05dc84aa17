"""Drug readers: a drug given is a pump refill only into an implanted pump; the refill drug ordered;
the drug's amount and waste in billing units."""
from __future__ import annotations

import datetime as dt

import pytest

from service.coding.readers import medication
from service.coding.readers.scope import Scope
from service.fhir.jsonview import Quantity

from .conftest import ENC, HCPCS, MODIFIER, SCT, concept, observed

INTRATHECAL = concept(SCT, "72607000")
INTRAVENOUS = concept(SCT, "47625008")


def given(route=INTRATHECAL, device=None, dose=None, **extra):
    m = {"resourceType": "MedicationAdministration", "id": "ma", "status": "completed", "context": ENC,
         "effectiveDateTime": "2026-11-20T10:10:00Z", "medicationCodeableConcept": {"text": "baclofen 2000 mcg/mL"},
         "dosage": {"route": route, "dose": dose or {"value": 20, "unit": "mL", "code": "mL"}},
         "performer": [{"actor": {"reference": "Practitioner/rn"}}], **extra}
    if device:
        m["device"] = [{"reference": device}]
    return m


@pytest.mark.parametrize("administration, implanted, elsewhere, refill", [
    (given(device="Device/pump"), {"pump"}, False, True),  # into the implanted pump
    (given(), set(), True, True),  # by a pump route, and the visit shows a refill otherwise
    (given(), set(), False, False),  # by a pump route alone: not enough
    (given(route=INTRAVENOUS, device="Device/infusion"), {"pump"}, True, False),  # IV through an infusion pump
])
def test_a_drug_given_is_a_refill_only_into_an_implanted_pump(notes, terms, administration, implanted, elsewhere, refill) -> None:
    medication.read_administrations([administration], implanted, elsewhere, notes, terms)
    assert ("refill" in notes.activities) is refill
    if refill:
        assert observed(notes, "refill") == ["drug administered into the pump"]
        assert notes.performer_refs == {"Practitioner/rn": False} and notes.drug_texts == ["baclofen 2000 mcg/mL"]
        assert notes.drug_sources == [(administration, Quantity(20, "mL", "mL"))]


def test_a_draft_drug_order_by_a_pump_route_is_a_refill_being_ordered(notes, terms) -> None:
    order = {"resourceType": "MedicationRequest", "id": "mr", "status": "draft", "intent": "order", "authoredOn": "2026-11-20",
             "medicationCodeableConcept": concept(HCPCS, "J0475"),
             "extension": [{"url": MODIFIER, "valueCode": "jw"}],
             "dosageInstruction": [{"route": INTRATHECAL}, {"doseAndRate": [{"doseQuantity": {"value": 40, "unit": "mg"}}]}]}
    medication.read_request(order, notes, terms, draft=True)
    assert notes.refill_draft and notes.targets == ["intrathecal"] and notes.drug_hcpcs == {"J0475"}
    assert notes.code_modifiers[("hcpcs", "J0475")] == ["JW"]
    assert notes.drug_sources == [(order, Quantity(40, "mg", None))]
    assert notes.evidence["refill"][0].date == "2026-11-20"


def test_an_order_without_a_dose_uses_the_dispense_quantity_and_a_recorded_order_is_no_refill(notes, terms) -> None:
    order = {"resourceType": "MedicationRequest", "id": "mr", "status": "active", "intent": "order",
             "medicationCodeableConcept": {"text": "morphine"}, "dosageInstruction": {"route": INTRATHECAL},
             "dispenseRequest": {"quantity": {"value": 20, "unit": "mL"}}}
    medication.read_request(order, notes, terms, draft=False)
    assert not notes.refill_draft and notes.drug_sources == []
    medication.read_request(order, notes, terms, draft=True)
    assert notes.drug_sources == [(order, Quantity(20, "mL", None))]


def test_the_amount_given_in_billing_units(notes, terms) -> None:
    """20 mL of 2 mg/mL baclofen = 40 mg = 4 units of J0475 (10 mg); waste of 500 mcg = 0.05 units."""
    ma = given(device="Device/pump")
    notes.drug_sources.append((ma, Quantity(20, "mL", "mL")))
    notes.drug_texts.append("baclofen")
    notes.concentration = (2.0, "mg")
    notes.wasted = Quantity(500, "mcg", None)
    drug = medication.drug(notes, terms, lambda mid: None)
    assert drug is not None and (drug.hcpcs, drug.amount, drug.unit) == ("J0475", pytest.approx(4.0), "10 mg")
    assert drug.wasted == pytest.approx(0.05) and drug.reference == "MedicationAdministration/ma"
    assert observed(notes, "drug") == ["refill drug baclofen, 40 mg"]


def test_a_referenced_medication_names_the_drug_and_its_strength(notes, terms) -> None:
    med = {"resourceType": "Medication", "id": "m1", "code": {"text": "Prialt (ziconotide)"},
           "ingredient": [{"strength": {"numerator": {"value": 100, "code": "ug"}, "denominator": {"value": 1, "code": "mL"}}}]}
    ma = given(device="Device/pump", medicationReference={"reference": "Medication/m1"})
    del ma["medicationCodeableConcept"]
    medication.read_administrations([ma], {"pump"}, False, notes, terms)
    drug = medication.drug(notes, terms, {"m1": med}.get)
    assert notes.concentration == (pytest.approx(0.1), "mg")
    assert drug is not None and drug.name == "ziconotide" and drug.amount is not None


def test_scope_of_administrations() -> None:
    scope = Scope("enc1", dt.date(2026, 11, 20))
    assert medication.given_in_visit(given(), scope)
    assert not medication.given_in_visit(given(status="not-done"), scope)
    assert not medication.given_in_visit(given(context={"reference": "Encounter/old"}), scope)
