"""Coverage: the payer of an active coverage (identifier and name), which picks the payer profile."""
from __future__ import annotations

from ...fhir.jsonview import JSON, child, items, ref_of, text
from .notes import VisitNotes


def payer(coverages: list[JSON], notes: VisitNotes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(payer identifiers as "system|value", payer names) of the active coverages."""
    ids: list[str] = []
    names: list[str] = []
    for c in coverages:
        if c.get("status") not in (None, "active"):
            continue
        for payor in items(c.get("payor")):
            identifier = child(payor, "identifier")
            value = text(identifier.get("value")) if identifier is not None else None
            if identifier is not None and value:
                ids.append(f"{text(identifier.get('system')) or ''}|{value}")
            name = text(payor.get("display"))
            if name:
                names.append(name)
        notes.note("payer", ref_of(c), "active insurance coverage")
    return tuple(ids), tuple(names)
