"""ServiceRequest (an order, usually the draft being signed): the CPT/HCPCS codes ordered, with
modifiers (extension or orderDetail), units, diagnoses, and who is to perform it."""
from __future__ import annotations

from ...fhir.jsonview import JSON, first_day, items, reference
from .codes import add_code, billing_codes
from .notes import VisitNotes
from .terms import Terms


def read(r: JSON, notes: VisitNotes, terms: Terms) -> None:
    """An order for a pumpcds activity is not evidence that it was done: only its billing codes count."""
    for key in billing_codes(r.get("code"), terms):
        add_code(notes, terms, key, r, billed=True, quantity=r.get("quantityQuantity"),
                 reasons=items(r.get("reasonCode")), day=first_day(r, "occurrenceDateTime", "authoredOn"))
    notes.order_performer_refs.extend(ref for p in items(r.get("performer")) if (ref := reference(p)))
