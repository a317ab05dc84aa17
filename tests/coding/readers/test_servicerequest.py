"""ServiceRequest reader: the codes ordered, modifiers from orderDetail, units, performers."""
from __future__ import annotations

from service.coding.readers import servicerequest

from .conftest import CPT, ENC, P, concept, observed


def test_an_order_with_an_order_detail_modifier_and_units(notes, terms) -> None:
    order = {"resourceType": "ServiceRequest", "id": "sr", "status": "draft", "intent": "order", "encounter": ENC,
             "authoredOn": "2026-11-20", "code": concept(CPT, "62370", "95990"), "orderDetail": [concept(CPT, "26")],
             "quantityQuantity": {"value": 2}, "performer": [{"reference": "Practitioner/md"}, {"display": "someone"}]}
    servicerequest.read(order, notes, terms)
    assert list(notes.code_carriers) == [("cpt", "62370"), ("cpt", "95990")]
    assert notes.code_modifiers[("cpt", "62370")] == ["26"] and notes.code_units[("cpt", "62370")] == {"ServiceRequest/sr": 2.0}
    assert notes.order_performer_refs == ["Practitioner/md"]
    assert observed(notes, "code:62370") == ["code 62370-26, 2 units"]


def test_an_order_for_an_activity_is_not_evidence_it_was_done(notes, terms) -> None:
    servicerequest.read({"resourceType": "ServiceRequest", "id": "sr", "status": "draft", "intent": "order",
                         "code": concept(P, "refill")}, notes, terms)
    assert notes.activities == set() and not notes.code_carriers
