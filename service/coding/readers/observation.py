"""Observation: pump parameters read or changed (a `previous-value` component makes a change),
refill volumes, drug waste, documentation statements and whether the result is signed off."""
from __future__ import annotations

import datetime as dt

from ...fhir.jsonview import JSON, Quantity, Value, first_day, items, plain, quantity, ref_of, reference, value_of
from ..visit import ParameterChange
from ..vocabulary import PUMPCDS
from .notes import VisitNotes
from .scope import Scope
from .terms import MASS_TO_MG, Terms

ACTIVE = frozenset({"final", "amended", "corrected", "preliminary", "registered"})
UNATTESTED = frozenset({"preliminary", "registered"})  # not yet signed off by its performer
REFILL_FACTS = frozenset({"volume-instilled", "residual-volume-aspirated", "residual-volume-expected"})


def in_visit(o: JSON, scope: Scope) -> bool:
    return o.get("status") in ACTIVE and scope.contains(o, "encounter", "effectiveDateTime", "effectivePeriod", "issued")


def read(o: JSON, notes: VisitNotes, terms: Terms) -> None:
    codes = [code for system, code, _ in terms.codings(o.get("code")) if system == PUMPCDS]
    if not codes:
        return
    code = codes[0]
    ref = ref_of(o)
    day = first_day(o, "effectiveDateTime", "effectivePeriod")
    value = value_of(o)
    _signature(o, code, value, ref, day, notes)
    device = reference(o.get("device"))
    if device:
        notes.device_refs.append(device)
    if code in terms.parameters:
        _parameter(o, code, value, ref, day, notes, terms)
    elif code in REFILL_FACTS:
        notes.activities.add("refill")
        notes.readings.add(code)
        notes.note("refill", ref, f"{code.replace('-', ' ')}: {plain(value)}", day)
    elif code == "drug-wasted":
        notes.wasted = quantity(value.raw) if value is not None and value.key == "valueQuantity" else None
        notes.documented.add("doc-waste-amount")
        notes.note("waste", ref, f"drug discarded: {plain(value)}", day)
    elif code == "container-single-dose":
        if value is not None and value.flag is not None:
            notes.single_dose = value.flag
    elif code == "drug-supplied-by-practice":
        if value is not None and value.flag is not None:
            notes.practice_supplied = value.flag
    elif code in terms.doc_elements and value is not None and value.stated:
        notes.documented.add(code)
        if code == "doc-qhp-skill-reason":
            notes.qhp_reasons.append("documented")
            notes.note("qhp-reason", ref, "why physician/QHP skill was needed is documented", day)


def _parameter(o: JSON, code: str, value: Value | None, ref: str, day: dt.date | None, notes: VisitNotes,
               terms: Terms) -> None:
    """A parameter with a different previous value is a change; otherwise a reading of it."""
    previous = None
    for comp in items(o.get("component")):
        if any(c == "previous-value" for s, c, _ in terms.codings(comp.get("code")) if s == PUMPCDS):
            previous = value_of(comp)
    if previous is not None and plain(previous) != plain(value):
        change = ParameterChange(code, plain(previous), plain(value), ref)
        notes.changes.append(change)
        notes.note("reprogramming", ref, change.describe(), day)
        return
    notes.readings.add(code)  # a value confirmed unchanged is still a reading of it
    if code == "concentration" and value is not None and value.key == "valueQuantity":
        amount = quantity(value.raw)
        if amount is not None and amount.value is not None:
            notes.concentration = concentration(amount)


def _signature(o: JSON, code: str, value: Value | None, ref: str, day: dt.date | None, notes: VisitNotes) -> None:
    """The performer's signature: a signature statement, or a result left preliminary (unattested)."""
    if code == "doc-performer-signature":
        if value is not None and value.flag is False:
            notes.unsigned.append(ref)
            notes.note("signature", ref, "the visit note is not signed", day)
        elif value is not None and value.raw != "":
            notes.signed = True
        return
    status = o.get("status")
    if status in UNATTESTED:
        notes.unsigned.append(ref)
        notes.note("signature", ref, f"{code.replace('-', ' ')} recorded but not signed off ({status})", day)


def concentration(q: Quantity) -> tuple[float, str] | None:
    """mg per mL from a Quantity like 2 mg/mL (or 500 ug/mL)."""
    unit = q.unit_code.replace(" ", "")
    if "/" not in unit or q.value is None:
        return None
    mass, per = unit.split("/", 1)
    if per.lower() not in {"ml", "1ml"} or mass.lower() not in MASS_TO_MG:
        return None
    return float(q.value) * MASS_TO_MG[mass.lower()], "mg"
