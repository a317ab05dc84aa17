"""ChargeItem reader: the codes charged, modifiers, units, diagnoses, performers."""
from __future__ import annotations

from service.coding.readers import chargeitem

from .conftest import CPT, ENC, HCPCS, ICD, MODIFIER, concept, observed


def test_a_charge_with_units_modifiers_reason_and_performer(notes, terms) -> None:
    coded = {"coding": [{"system": HCPCS, "code": "J0475", "extension": [{"url": MODIFIER, "valueCoding": {"code": "jz"}}]}]}
    charge = {"resourceType": "ChargeItem", "id": "c1", "status": "billable", "context": ENC, "code": coded,
              "occurrenceDateTime": "2026-11-20T10:30:00Z", "quantity": {"value": 4},
              "extension": [{"url": MODIFIER, "valueCode": "JW"}], "reason": [concept(ICD, "G35")],
              "performer": [{"actor": {"reference": "PractitionerRole/rn1"}}]}
    chargeitem.read(charge, notes, terms)
    key = ("hcpcs", "J0475")
    assert notes.code_carriers[key] == [("ChargeItem/c1", "billed")]
    assert notes.code_modifiers[key] == ["JW", "JZ"] and notes.code_units[key] == {"ChargeItem/c1": 4.0}
    assert notes.code_reasons[key] == ["G35"] and notes.diagnoses == [("G35", "ChargeItem/c1")]
    assert notes.order_performer_refs == ["PractitionerRole/rn1"]
    assert observed(notes, "code:J0475") == ["code J0475-JW-JZ, 4 units"]
    assert notes.evidence["code:J0475"][0].date == "2026-11-20"


def test_codes_of_other_systems_are_not_chosen_codes(notes, terms) -> None:
    chargeitem.read({"resourceType": "ChargeItem", "id": "c2", "status": "billable",
                     "code": concept("http://example.org/chargemaster", "62369")}, notes, terms)
    chargeitem.read({"resourceType": "ChargeItem", "id": "c3", "status": "billable", "code": concept(CPT, "62369"),
                     "quantity": {"value": 1.5}}, notes, terms)
    assert list(notes.code_carriers) == [("cpt", "62369")] and notes.code_units[("cpt", "62369")] == {"ChargeItem/c3": 1.5}
