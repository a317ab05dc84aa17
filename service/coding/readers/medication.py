"""MedicationAdministration, MedicationRequest and Medication: whether a drug given was a pump
refill, the refill drug ordered, and the drug with its amount and waste in billing units."""
from __future__ import annotations

from collections.abc import Callable

from ...fhir.jsonview import (
    JSON,
    Quantity,
    child,
    day,
    first_day,
    items,
    quantity,
    ref_of,
    reference,
    reference_id,
)
from ..visit import DrugUse
from .codes import add_code
from .notes import VisitNotes
from .scope import Scope
from .terms import INACTIVE, MASS_TO_MG, Terms, fmt

# routes by which a drug reaches an implanted pump's catheter
PUMP_ROUTE_TARGETS = frozenset({"intrathecal", "epidural", "spinal", "intraventricular", "intra-arterial"})


def given_in_visit(m: JSON, scope: Scope) -> bool:
    return m.get("status") not in INACTIVE and scope.contains(m, "context", "effectiveDateTime", "effectivePeriod")


def read_administrations(administrations: list[JSON], implanted: set[str], refill_elsewhere: bool,
                         notes: VisitNotes, terms: Terms) -> None:
    """A drug given counts as a pump refill only into an implanted drug pump: its `device` is an
    implanted-pump Device, or it went by a pump route (intrathecal, epidural, intraspinal,
    intraventricular, intra-arterial) and the patient has an implanted pump on record or the
    visit shows a refill otherwise (refill activity or facts, a refill drug order, a chosen
    refill code). An IV push through an infusion pump, TPN through a PICC line or insulin from an
    insulin pump names a `device` too, and is none of these."""
    for m in administrations:
        refs = [r for d in items(m.get("device")) if (r := reference(d))]
        into_pump = any(r.rstrip("/").split("/")[-1] in implanted for r in refs)
        dosage = child(m, "dosage")
        route = dosage.get("route") if dosage is not None else None
        target = terms.route_target(route) if route is not None else None
        if not (into_pump or (target in PUMP_ROUTE_TARGETS and refill_elsewhere)):
            continue
        ref = ref_of(m)
        notes.device_refs.extend(refs)
        if target:
            terms.note_target(target, notes, ref)
        notes.activities.add("refill")
        notes.note("refill", ref, "drug administered into the pump", first_day(m, "effectiveDateTime", "effectivePeriod"))
        for perf in items(m.get("performer")):
            actor = reference(perf.get("actor"))
            if actor:
                notes.performer_refs.setdefault(actor, False)
        terms.drug_codes(m.get("medicationCodeableConcept"), notes)
        if m.get("medicationReference") is not None:
            notes.drug_sources.append((m, None))
        notes.drug_sources.append((m, quantity(dosage.get("dose")) if dosage is not None else None))


def read_request(r: JSON, notes: VisitNotes, terms: Terms, draft: bool) -> None:
    """A drug order: the route (target), the drug, a HCPCS drug code chosen on it; a draft order by
    a pump route is a refill being ordered, with its dose as the drug amount."""
    ref = ref_of(r)
    target = None
    instructions = items(r.get("dosageInstruction"))
    for instruction in instructions:
        route = instruction.get("route")
        if route is not None:
            target = terms.target_from(route, notes, ref) or target
    concept = r.get("medicationCodeableConcept")
    terms.drug_codes(concept, notes)
    for system, code, _ in terms.codings(concept):
        if system == "hcpcs":
            add_code(notes, terms, (system, code), r, billed=True, reasons=items(r.get("reasonCode")),
                     day=day(r.get("authoredOn")))
    if not (draft and target is not None):
        return
    notes.refill_draft = True
    notes.note("refill", ref, "refill drug ordered for the pump", day(r.get("authoredOn")))
    dose = None
    for instruction in instructions:
        for rate in items(instruction.get("doseAndRate")):
            if dose is None:
                dose = quantity(rate.get("doseQuantity"))
    if dose is None:
        dose = quantity((child(r, "dispenseRequest") or {}).get("quantity"))
    notes.drug_sources.append((r, dose))


def drug(notes: VisitNotes, terms: Terms, medication: Callable[[str], JSON | None]) -> DrugUse | None:
    """The refill drug and its amount in the HCPCS code's billing units: what was given counts; the
    order's dose only when no administration says how much. `medication` finds a Medication by id."""
    for r, _ in notes.drug_sources:
        mid = reference_id(r.get("medicationReference"))
        med = medication(mid) if mid else None
        if med is None:
            continue
        terms.drug_codes(med.get("code"), notes)
        for ingredient in items(med.get("ingredient")):
            strength = ingredient.get("strength")
            if strength is not None and notes.concentration is None:
                notes.concentration = _strength(strength)
    if not notes.drug_sources and not notes.drug_hcpcs:
        return None
    info = terms.vocab.drug_for(notes.drug_rxnorm, notes.drug_texts, notes.drug_hcpcs)
    if info is None:
        return None
    amount = None
    ref = ref_of(notes.drug_sources[0][0]) if notes.drug_sources else ""
    amounts = [(r, to_mg(dose, notes.concentration)) for r, dose in notes.drug_sources]
    given = [(r, mg) for r, mg in amounts if r.get("resourceType") == "MedicationAdministration"]
    for r, mg in given if any(mg is not None for _, mg in given) else amounts:
        if mg is not None:
            amount = (amount or 0.0) + mg
            ref = ref_of(r)
    unit_mg = info.unit_value * MASS_TO_MG.get(info.unit, 1.0)
    wasted = to_mg(notes.wasted, notes.concentration)
    if notes.practice_supplied is None and notes.drug_hcpcs:
        notes.practice_supplied = True
    notes.note("drug", ref, f"refill drug {info.key}" + (f", {fmt(amount)} mg" if amount is not None else ""))
    return DrugUse(
        info.key, info.hcpcs,
        None if amount is None else amount / unit_mg, f"{fmt(info.unit_value)} {info.unit}",
        None if wasted is None else wasted / unit_mg,
        notes.single_dose, notes.practice_supplied, ref,
    )


def to_mg(q: Quantity | None, concentration: tuple[float, str] | None) -> float | None:
    """A drug amount in mg: a mass as such, a volume in mL by the concentration."""
    if q is None or q.value is None:
        return None
    unit = q.unit_code.strip().lower()
    value = float(q.value)
    if unit in MASS_TO_MG:
        return value * MASS_TO_MG[unit]
    if unit == "ml" and concentration is not None:
        return value * concentration[0]
    return None


def _strength(ratio: JSON) -> tuple[float, str] | None:
    """mg per mL from an ingredient strength such as 2 mg / 1 mL."""
    num, den = quantity(ratio.get("numerator")), quantity(ratio.get("denominator"))
    if num is None or den is None or num.value is None or not den.value:
        return None
    mass = num.unit_code.lower()
    per = den.unit_code.lower()
    if mass not in MASS_TO_MG or per != "ml":
        return None
    return float(num.value) * MASS_TO_MG[mass] / float(den.value), "mg"

