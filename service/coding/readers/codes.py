"""Codes already chosen for the visit (CPT/HCPCS on orders, charges, procedures and drug orders):
who carries them, with which modifiers, how many units and for which diagnoses."""
from __future__ import annotations

import datetime as dt
from typing import Any

from ...fhir.jsonview import JSON, child, codings, items, number, ref_of, text
from .notes import VisitNotes
from .terms import Terms

MODIFIER_EXTENSION = "http://pumpcds.org/fhir/StructureDefinition/billing-modifier"
BILLING_SYSTEMS = frozenset({"cpt", "hcpcs"})


def modifiers(resource: JSON, terms: Terms) -> list[str]:
    """Billing modifiers: the billing-modifier extension on the resource or on its code's codings,
    and two-character CPT/HCPCS codes in a ServiceRequest's orderDetail."""
    extensions = items(resource.get("extension"))
    for coding in codings(resource.get("code")):
        extensions.extend(items(coding.get("extension")))
    found: list[str] = []
    for ext in extensions:
        if ext.get("url") != MODIFIER_EXTENSION:
            continue
        coded = text((child(ext, "valueCoding") or {}).get("code"))
        value = coded or text(ext.get("valueCode"))
        if value:
            found.append(value.strip().upper())
    for detail in items(resource.get("orderDetail")):
        for system, code, _ in terms.codings(detail):
            if system in BILLING_SYSTEMS and len(code) == 2:
                found.append(code.upper())
    return found


def add_code(notes: VisitNotes, terms: Terms, key: tuple[str, str], resource: JSON, *, billed: bool,
             quantity: Any = None, reasons: list[JSON] | None = None, day: dt.date | None = None) -> None:
    """One chosen code on one resource: `quantity` is the JSON Quantity giving its units (one when
    absent), `reasons` the CodeableConcepts naming its diagnoses."""
    ref = ref_of(resource)
    notes.code_carriers[key].append((ref, "billed" if billed else "record"))
    mods = modifiers(resource, terms)
    notes.code_modifiers[key].extend(mods)
    value = number(quantity.get("value")) if type(quantity) is dict else None
    units = 1.0 if value is None else float(value)
    notes.code_units[key][ref] = units
    for reason in reasons or ():
        for system, code, _ in terms.codings(reason):
            if system == "icd10cm":
                notes.code_reasons[key].append(code)
                notes.diagnoses.append((code, ref))
    suffix = "".join(f"-{m}" for m in mods)
    notes.note(f"code:{key[1]}", ref, f"code {key[1]}{suffix}" + (f", {units:g} units" if units != 1 else ""), day)


def billing_codes(concept: Any, terms: Terms) -> list[tuple[str, str]]:
    """The (system, code) pairs of a concept that are CPT or HCPCS codes."""
    return [(system, code) for system, code, _ in terms.codings(concept) if system is not None and system in BILLING_SYSTEMS]
