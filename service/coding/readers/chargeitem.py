"""ChargeItem (encounter close): the CPT/HCPCS codes charged, with modifiers, units (quantity),
diagnoses, and who performed the service."""
from __future__ import annotations

from ...fhir.jsonview import JSON, first_day, items, reference
from .codes import add_code, billing_codes
from .notes import VisitNotes
from .terms import Terms


def read(c: JSON, notes: VisitNotes, terms: Terms) -> None:
    for key in billing_codes(c.get("code"), terms):
        add_code(notes, terms, key, c, billed=True, quantity=c.get("quantity"),
                 reasons=items(c.get("reason")), day=first_day(c, "occurrenceDateTime"))
    notes.order_performer_refs.extend(ref for p in items(c.get("performer")) if (ref := reference(p.get("actor"))))
