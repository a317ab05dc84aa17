"""From the FHIR resources of one hook call to the `PumpVisit` facts (docs/fhir-input.md).

Each resource is read once, in one pass per type; nothing here decides a code. What the visit
shows is recorded with its evidence (resource reference and a PHI-free statement) so every
finding can say which resource made it fire.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.resource import Resource

from ..fhir.resources import VisitResources
from . import unknowns
from .codetable import CodeTable
from .findings import Evidence
from .terminology import concepts
from .visit import ChosenCode, DrugUse, ParameterChange, Performer, Pump, PumpVisit
from .vocabulary import PUMPCDS, Vocabulary

MODIFIER_EXTENSION = "http://pumpcds.org/fhir/StructureDefinition/billing-modifier"
INACTIVE = {"entered-in-error", "not-done", "cancelled", "revoked", "aborted", "stopped", "preparation"}
OBS_ACTIVE = {"final", "amended", "corrected", "preliminary", "registered"}
ACTIVITIES = {"electronic-analysis", "reprogramming", "refill", "port-irrigation"}
REFILL_FACTS = {"volume-instilled", "residual-volume-aspirated", "residual-volume-expected"}
MASS_TO_MG = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001, "µg": 0.001}
# implanted drug pumps (pumpcds pump-kind); an external pump or a venous access port is not one
IMPLANTED_KINDS = frozenset({"programmable-pump", "nonprogrammable-pump", "subcutaneous-reservoir"})
PUMP_ROUTE_TARGETS = frozenset({"intrathecal", "epidural", "spinal", "intraventricular", "intra-arterial"})
# What a parameter read at the analysis documents, whether read unchanged or recorded as a change
# with its previous value (docs/fhir-input.md section 7 says the same, and points here).
PARAMETER_DOCUMENTS = {
    "reservoir-volume": "doc-reservoir-status", "alarm-setting": "doc-alarm-status",
    "next-refill-date": "doc-next-refill-date",
    **{p: "doc-prescription-status" for p in ("daily-dose", "flow-rate", "concentration", "drug", "infusion-mode", "bolus")},
}
UNATTESTED = {"preliminary", "registered"}  # an Observation not yet signed off by its performer


def _ref(r: Resource) -> str:
    return f"{r.get_resource_type()}/{r.id}" if r.id else r.get_resource_type()


def _day(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _ref_id(reference: Any) -> str | None:
    text = getattr(reference, "reference", None)
    if not isinstance(text, str) or "/" not in text:
        return None
    return text.rstrip("/").split("/")[-1]


def _plain(value: Any) -> str:
    """A value as short text for evidence and parameter changes (quantities with their unit)."""
    if value is None:
        return "?"
    if hasattr(value, "value") and hasattr(value, "unit"):
        number = value.value
        if isinstance(number, Decimal):
            number = number.normalize()
            number = format(number, "f")
        unit = value.unit or value.code or ""
        return f"{number} {unit}".strip()
    if hasattr(value, "coding") or hasattr(value, "text"):
        coding = (getattr(value, "coding", None) or [None])[0]
        return (getattr(coding, "display", None) or getattr(coding, "code", None) or getattr(value, "text", None) or "?")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    return str(value)


def _value(obs: Any) -> Any:
    for name in ("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger",
                 "valueDateTime", "valueRatio", "valuePeriod"):
        v = getattr(obs, name, None)
        if v is not None:
            return v
    return None


@dataclass
class _Acc:
    """Mutable accumulator while reading resources; frozen into a PumpVisit at the end."""

    activities: set[str] = field(default_factory=set)
    changes: list[ParameterChange] = field(default_factory=list)
    readings: set[str] = field(default_factory=set)
    documented: set[str] = field(default_factory=set)
    evidence: dict[str, list[Evidence]] = field(default_factory=lambda: defaultdict(list))
    performer_refs: dict[str, bool] = field(default_factory=dict)  # reference -> supervising
    order_performer_refs: list[str] = field(default_factory=list)
    qhp_reasons: list[str] = field(default_factory=list)
    code_carriers: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    code_modifiers: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    code_units: dict[tuple[str, str], dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    code_reasons: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    diagnoses: list[tuple[str, str]] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    device_refs: list[str] = field(default_factory=list)
    drug_sources: list[tuple[Resource, Any]] = field(default_factory=list)  # (resource, dose quantity)
    drug_rxnorm: set[str] = field(default_factory=set)
    drug_texts: list[str] = field(default_factory=list)
    drug_hcpcs: set[str] = field(default_factory=set)
    concentration: tuple[float, str] | None = None  # (amount per mL, mass unit)
    wasted: Any = None
    single_dose: bool | None = None
    practice_supplied: bool | None = None
    refill_draft: bool = False
    signed: bool = False
    unsigned: list[str] = field(default_factory=list)
    administrations: list[Any] = field(default_factory=list)  # read after the devices are known

    def note(self, fact: str, reference: str, observed: str, day: dt.date | None = None) -> None:
        self.evidence[fact].append(Evidence(reference, observed, day.isoformat() if day else None))


class VisitReader:
    """Builds a `PumpVisit` from `VisitResources`; holds only lookup tables, so one per app."""

    def __init__(self, vocabulary: Vocabulary, code_table: CodeTable) -> None:
        self.vocab = vocabulary
        self.codes = code_table
        self._parameters = {c.code for c in concepts().values() if c.group == "parameter"} - {"previous-value"}
        self._doc_elements = {c.code for c in concepts().values() if c.group == "documentation"}
        self._qhp_reasons = {c.code for c in concepts().values() if c.group == "qhp-skill-reason"}
        self._targets = {c.code for c in concepts().values() if c.group == "target"}
        self._kinds = {c.code for c in concepts().values() if c.group == "pump-kind"}

    # -- scope ---------------------------------------------------------------------------
    def read(self, resources: VisitResources) -> PumpVisit:
        context = resources.context
        encounter_id = context.get("encounterId") if isinstance(context.get("encounterId"), str) else None
        by_type: dict[str, list[Resource]] = defaultdict(list)
        for r in resources.resources:
            by_type[r.get_resource_type()].append(r)
        drafts = list(resources.draft_orders)
        dos = self._date_of_service(drafts, by_type, encounter_id)

        def in_visit(r: Resource, encounter_ref: Any, day: dt.date | None) -> bool:
            ref_id = _ref_id(encounter_ref)
            if encounter_id and ref_id:
                return ref_id == encounter_id
            return day is None or day == dos

        acc = _Acc()
        in_scope: list[Resource] = []
        for r in drafts:
            self._read_billable(r, acc, draft=True)
            if _day(getattr(r, "occurrenceDateTime", None) or getattr(r, "authoredOn", None)):
                acc.documented.add("doc-visit-date")
        for p in by_type["Procedure"]:
            if p.status in INACTIVE or not in_visit(p, p.encounter, _day(p.performedDateTime or (p.performedPeriod.start if p.performedPeriod else None))):
                continue
            in_scope.append(p)
            self._read_procedure(p, acc)
        for o in by_type["Observation"]:
            if o.status not in OBS_ACTIVE or not in_visit(o, o.encounter, _day(o.effectiveDateTime or (o.effectivePeriod.start if o.effectivePeriod else None) or o.issued)):
                continue
            in_scope.append(o)
            self._read_observation(o, acc)
        for m in by_type["MedicationAdministration"]:
            if m.status in INACTIVE or not in_visit(m, m.context, _day(m.effectiveDateTime or (m.effectivePeriod.start if m.effectivePeriod else None))):
                continue
            self._read_administration(m, acc)
        medications = {m.id: m for m in by_type["Medication"] if m.id}
        for kind in ("ServiceRequest", "ChargeItem", "MedicationRequest"):
            for r in by_type[kind]:
                enc = getattr(r, "encounter", None) or getattr(r, "context", None)
                day = _day(getattr(r, "occurrenceDateTime", None) or getattr(r, "authoredOn", None) or getattr(r, "enteredDate", None))
                if getattr(r, "status", None) in INACTIVE or not in_visit(r, enc, day):
                    continue
                self._read_billable(r, acc, draft=False)
        for c in by_type["Condition"]:
            if in_visit(c, c.encounter, _day(c.recordedDate)) and (c.encounter is not None or encounter_id is None):
                for system, code, _ in self.vocab.codings(c.code):
                    if system == "icd10cm":
                        acc.diagnoses.append((code, _ref(c)))
        for enc in by_type["Encounter"]:
            if encounter_id and enc.id == encounter_id:
                for rc in enc.reasonCode or ():
                    for system, code, _ in self.vocab.codings(rc):
                        if system == "icd10cm":
                            acc.diagnoses.append((code, _ref(enc)))

        self._refill_administrations(acc, by_type["Device"])
        pump = self._pump(by_type["Device"], acc)
        performers = self._performers(acc, by_type)
        drug = self._drug(acc, medications)
        payer_ids, payer_names = self._payer(by_type["Coverage"], acc)
        visit = self._freeze(resources.hook, dos, pump, performers, drug, payer_ids, payer_names, acc)
        patient = context.get("patientId") if isinstance(context.get("patientId"), str) else None
        undecided, unreadable = unknowns.assess(resources, unknowns.local_code_resources(in_scope, self.vocab))
        return replace(
            visit,
            undecided=undecided,
            unreadable=unreadable,
            patient_reference=f"Patient/{patient}" if patient else None,
            encounter_reference=f"Encounter/{encounter_id}" if encounter_id else None,
            input_problems=_input_problems(resources),
        )

    def _date_of_service(self, drafts: list[Resource], by_type: dict[str, list[Resource]], encounter_id: str | None) -> dt.date:
        for r in drafts:
            for name in ("occurrenceDateTime", "performedDateTime", "authoredOn", "occurrenceDateTime"):
                day = _day(getattr(r, name, None))
                if day:
                    return day
            period = getattr(r, "occurrencePeriod", None)
            if period is not None and _day(period.start):
                return _day(period.start)  # type: ignore[return-value]
        for enc in by_type["Encounter"]:
            if enc.period is not None and (encounter_id is None or enc.id == encounter_id) and _day(enc.period.start):
                return _day(enc.period.start)  # type: ignore[return-value]
        days = []
        for p in by_type["Procedure"]:
            if encounter_id and _ref_id(p.encounter) not in (None, encounter_id):
                continue
            day = _day(p.performedDateTime or (p.performedPeriod.start if p.performedPeriod else None))
            if day:
                days.append(day)
        return max(days) if days else dt.datetime.now(dt.UTC).date()

    # -- readers per resource type -------------------------------------------------------
    def _read_procedure(self, p: Any, acc: _Acc, billed: bool = False) -> None:
        ref = _ref(p)
        day = _day(p.performedDateTime or (p.performedPeriod.start if p.performedPeriod else None))
        activities = set()
        for system, code, _ in self.vocab.codings(p.code):
            if system == PUMPCDS and code in ACTIVITIES:
                activities.add(code)
            elif system in {"cpt", "hcpcs"}:
                self._add_code(acc, system, code, ref, p, billed=billed)
        for a in sorted(activities):
            acc.activities.add(a)
            acc.note(a, ref, f"{_words(a)} done", day)
        if day:
            acc.documented.add("doc-visit-date")
        if p.performedPeriod is not None and p.performedPeriod.start and p.performedPeriod.end:
            acc.documented.add("doc-duration")
        for site in p.bodySite or ():
            self._target_from(site, acc, ref)
        for fd in p.focalDevice or ():
            if fd.manipulated is not None and fd.manipulated.reference:
                acc.device_refs.append(fd.manipulated.reference)
        for perf in p.performer or ():
            actor = perf.actor.reference if perf.actor is not None else None
            if not actor:
                continue
            supervising = any(code == "supervising-physician" for _, code, _ in self.vocab.codings(perf.function))
            acc.performer_refs[actor] = acc.performer_refs.get(actor, False) or supervising
        for reason in p.reasonCode or ():
            matched = False
            for system, code, _ in self.vocab.codings(reason):
                if system == PUMPCDS and code in self._qhp_reasons:
                    acc.qhp_reasons.append(code)
                    acc.note("qhp-reason", ref, f"physician/QHP skill needed: {_words(code)}", day)
                    matched = True
                elif system == "icd10cm":
                    acc.diagnoses.append((code, ref))
            if not matched:
                if "reprogramming" in activities:
                    acc.documented.add("doc-change-reason")
                if "electronic-analysis" in activities or not activities:
                    acc.documented.add("doc-indication")
        if p.reasonReference:
            if "reprogramming" in activities:
                acc.documented.add("doc-change-reason")
            acc.documented.add("doc-indication")

    def _read_observation(self, o: Any, acc: _Acc) -> None:
        ref = _ref(o)
        day = _day(o.effectiveDateTime or (o.effectivePeriod.start if o.effectivePeriod else None))
        codes = [code for system, code, _ in self.vocab.codings(o.code) if system == PUMPCDS]
        if not codes:
            return
        code = codes[0]
        value = _value(o)
        self._signature(o, code, value, ref, day, acc)
        if o.device is not None and o.device.reference:
            acc.device_refs.append(o.device.reference)
        if code in self._parameters:
            previous = None
            for comp in o.component or ():
                if any(c == "previous-value" for s, c, _ in self.vocab.codings(comp.code) if s == PUMPCDS):
                    previous = _value(comp)
            if previous is not None and _plain(previous) != _plain(value):
                change = ParameterChange(code, _plain(previous), _plain(value), ref)
                acc.changes.append(change)
                acc.note("reprogramming", ref, f"{change.describe()}", day)
                return
            acc.readings.add(code)  # a value confirmed unchanged is still a reading of it
            if code == "concentration" and getattr(value, "value", None) is not None:
                acc.concentration = _concentration(value)
            return
        if code in REFILL_FACTS:
            acc.activities.add("refill")
            acc.readings.add(code)
            acc.note("refill", ref, f"{code.replace('-', ' ')}: {_plain(value)}", day)
            return
        if code == "drug-wasted":
            acc.wasted = value
            acc.documented.add("doc-waste-amount")
            acc.note("waste", ref, f"drug discarded: {_plain(value)}", day)
            return
        if code == "container-single-dose" and isinstance(value, bool):
            acc.single_dose = value
            return
        if code == "drug-supplied-by-practice" and isinstance(value, bool):
            acc.practice_supplied = value
            return
        if code in self._doc_elements and value not in (None, False, ""):
            acc.documented.add(code)
            if code == "doc-qhp-skill-reason":
                acc.qhp_reasons.append("documented")
                acc.note("qhp-reason", ref, "why physician/QHP skill was needed is documented", day)

    @staticmethod
    def _signature(o: Any, code: str, value: Any, ref: str, day: dt.date | None, acc: _Acc) -> None:
        """The performer's signature: a signature statement, or a result left preliminary (unattested)."""
        if code == "doc-performer-signature":
            if value is False:
                acc.unsigned.append(ref)
                acc.note("signature", ref, "the visit note is not signed", day)
            elif value not in (None, ""):
                acc.signed = True
            return
        if o.status in UNATTESTED:
            acc.unsigned.append(ref)
            acc.note("signature", ref, f"{code.replace('-', ' ')} recorded but not signed off ({o.status})", day)

    def _read_administration(self, m: Any, acc: _Acc) -> None:
        """Only noted here; whether it was a pump refill is decided once the devices are known."""
        acc.administrations.append(m)

    def _refill_administrations(self, acc: _Acc, devices: list[Any]) -> None:
        """A drug given counts as a pump refill only into an implanted drug pump: its `device` is an
        implanted-pump Device, or it went by a pump route (intrathecal, epidural, intraspinal,
        intraventricular, intra-arterial) and the patient has an implanted pump on record or the
        visit shows a refill otherwise (refill activity or facts, a refill drug order, a chosen
        refill code). An IV push through an infusion pump, TPN through a PICC
        line or insulin from an insulin pump names a `device` too, and is none of these."""
        implanted = {d.id for d in devices if d.id and self._device_kind(d)[0] in IMPLANTED_KINDS}
        chosen_refill = any(
            (info := self.codes.get(code)) is not None and info.pump_family and info.refilled
            for _, code in acc.code_carriers
        )
        refill_elsewhere = "refill" in acc.activities or acc.refill_draft or chosen_refill or bool(implanted)
        for m in acc.administrations:
            refs = [d.reference for d in m.device or () if d.reference]
            into_pump = any(r.rstrip("/").split("/")[-1] in implanted for r in refs)
            route = m.dosage.route if m.dosage is not None else None
            by_pump_route = route is not None and self._route_target(route) in PUMP_ROUTE_TARGETS
            if not (into_pump or (by_pump_route and refill_elsewhere)):
                continue
            ref = _ref(m)
            day = _day(m.effectiveDateTime or (m.effectivePeriod.start if m.effectivePeriod else None))
            acc.device_refs.extend(refs)
            if route is not None:
                self._target_from(route, acc, ref)
            acc.activities.add("refill")
            acc.note("refill", ref, "drug administered into the pump", day)
            for perf in m.performer or ():
                actor = perf.actor.reference if perf.actor is not None else None
                if actor:
                    acc.performer_refs.setdefault(actor, False)
            self._drug_codes(m.medicationCodeableConcept, acc)
            if m.medicationReference is not None:
                acc.drug_sources.append((m, None))
            dose = m.dosage.dose if m.dosage is not None else None
            acc.drug_sources.append((m, dose))

    def _read_billable(self, r: Any, acc: _Acc, draft: bool) -> None:
        """ServiceRequest, ChargeItem, Procedure or MedicationRequest carrying codes chosen for the visit."""
        rtype = r.get_resource_type()
        ref = _ref(r)
        if rtype == "Procedure":
            if draft:
                self._read_procedure(r, acc, billed=True)
            return
        if rtype == "MedicationRequest":
            routes = [d.route for d in (r.dosageInstruction or ()) if d.route is not None]
            target = None
            for route in routes:
                target = self._target_from(route, acc, ref) or target
            self._drug_codes(r.medicationCodeableConcept, acc)
            for system, code, _ in self.vocab.codings(r.medicationCodeableConcept):
                if system == "hcpcs":
                    self._add_code(acc, system, code, ref, r, billed=True)
            if draft and target is not None:
                acc.refill_draft = True
                acc.note("refill", ref, "refill drug ordered for the pump", _day(r.authoredOn))
                dose = None
                for d in r.dosageInstruction or ():
                    for dr in d.doseAndRate or ():
                        dose = dose or dr.doseQuantity
                if dose is None and r.dispenseRequest is not None:
                    dose = r.dispenseRequest.quantity
                acc.drug_sources.append((r, dose))
            return
        concept = getattr(r, "code", None)
        for system, code, _ in self.vocab.codings(concept):
            if system in {"cpt", "hcpcs"}:
                self._add_code(acc, system, code, ref, r, billed=True)
            elif system == PUMPCDS and code in ACTIVITIES and draft and rtype == "ServiceRequest":
                pass  # an order for an activity is not evidence that it was done
        if rtype == "ServiceRequest":
            for perf in r.performer or ():
                if perf.reference:
                    acc.order_performer_refs.append(perf.reference)
        if rtype == "ChargeItem":
            for perf in r.performer or ():
                if perf.actor is not None and perf.actor.reference:
                    acc.order_performer_refs.append(perf.actor.reference)

    # -- helpers -------------------------------------------------------------------------
    def _add_code(self, acc: _Acc, system: str, code: str, ref: str, r: Any, billed: bool) -> None:
        key = (system, code)
        acc.code_carriers[key].append((ref, "billed" if billed else "record"))
        acc.code_modifiers[key].extend(self._modifiers(r))
        units = 1.0
        quantity = getattr(r, "quantity", None) if r.get_resource_type() == "ChargeItem" else getattr(r, "quantityQuantity", None)
        if quantity is not None and quantity.value is not None:
            units = float(quantity.value)
        acc.code_units[key][ref] = units
        reasons = list(getattr(r, "reasonCode", None) or ()) + list(getattr(r, "reason", None) or ())
        for reason in reasons:
            for s, c, _ in self.vocab.codings(reason):
                if s == "icd10cm":
                    acc.code_reasons[key].append(c)
                    acc.diagnoses.append((c, ref))
        day = _day(getattr(r, "occurrenceDateTime", None) or getattr(r, "authoredOn", None) or getattr(r, "performedDateTime", None))
        mods = "".join(f"-{m}" for m in self._modifiers(r))
        acc.note(f"code:{code}", ref, f"code {code}{mods}" + (f", {units:g} units" if units != 1 else ""), day)

    def _modifiers(self, r: Any) -> list[str]:
        found: list[str] = []
        extensions = list(getattr(r, "extension", None) or ())
        concept = getattr(r, "code", None)
        for coding in getattr(concept, "coding", None) or ():
            extensions.extend(coding.extension or ())
        for ext in extensions:
            if ext.url == MODIFIER_EXTENSION:
                if ext.valueCoding is not None and ext.valueCoding.code:
                    found.append(ext.valueCoding.code.strip().upper())
                elif ext.valueCode:
                    found.append(ext.valueCode.strip().upper())
        for detail in getattr(r, "orderDetail", None) or ():
            for system, code, _ in self.vocab.codings(detail):
                if system in {"cpt", "hcpcs"} and len(code) == 2:
                    found.append(code.upper())
        return found

    def _route_target(self, concept: Any) -> str | None:
        for system, code, _ in self.vocab.codings(concept):
            if system == "snomed" and code in self.vocab.routes:
                return self.vocab.routes[code]
            if system == PUMPCDS and code in self._targets:
                return code
        return None

    def _target_from(self, concept: Any, acc: _Acc, ref: str) -> str | None:
        for system, code, _ in self.vocab.codings(concept):
            target = None
            if system == "snomed" and code in self.vocab.routes:
                target = self.vocab.routes[code]
            elif system == PUMPCDS and code in self._targets:
                target = code
            if target:
                acc.targets.append(target)
                acc.note("target", ref, f"delivered: {_words(target)}")
                return target
        return None

    def _drug_codes(self, concept: Any, acc: _Acc) -> None:
        if concept is None:
            return
        if getattr(concept, "text", None):
            acc.drug_texts.append(concept.text)
        for system, code, display in self.vocab.codings(concept):
            if system == "rxnorm":
                acc.drug_rxnorm.add(code)
            elif system == "hcpcs":
                acc.drug_hcpcs.add(code)
            if display:
                acc.drug_texts.append(display)

    def _pump(self, devices: list[Any], acc: _Acc) -> Pump:
        candidates = [d for d in devices if d.status not in {"entered-in-error", "inactive"}]
        referenced = {r.rstrip("/").split("/")[-1] for r in acc.device_refs}
        chosen = None
        for d in candidates:
            if d.id in referenced:
                chosen = d
                break
        kinds: dict[str, tuple[str | None, str | None, str | None]] = {}
        for d in candidates:
            kinds[d.id or ""] = self._device_kind(d)
        if chosen is None:
            chosen = next((d for d in candidates if kinds[d.id or ""][0]), None)
        target = self._resolve_target(acc.targets)
        if chosen is None:
            return Pump(target=target)
        kind, model, device_target = kinds[chosen.id or ""]
        ref = _ref(chosen)
        target = device_target or target
        identified = bool(chosen.serialNumber or chosen.udiCarrier)
        if identified and (model or chosen.modelNumber):
            acc.documented.add("doc-device-identification")
        if target:
            acc.documented.add("doc-route")
        acc.note("pump", ref, f"pump: {_words(kind) if kind else 'kind not recorded'}{f' ({model})' if model else ''}")
        return Pump(kind, target, model, chosen.manufacturer, ref, identified)

    def _device_kind(self, d: Any) -> tuple[str | None, str | None, str | None]:
        kind = target = None
        for system, code, _ in self.vocab.codings(d.type):
            if system == PUMPCDS and code in self._kinds:
                kind = code
            elif system == "snomed" and code in self.vocab.device_types:
                spec = self.vocab.device_types[code]
                kind = kind or spec.get("kind")
                target = spec.get("target") or target
        for prop in d.property or ():
            prop_codes = {c for s, c, _ in self.vocab.codings(prop.type) if s == PUMPCDS}
            for value in prop.valueCode or ():
                for system, code, _ in self.vocab.codings(value):
                    if system != PUMPCDS:
                        continue
                    if "pump-kind" in prop_codes and code in self._kinds:
                        kind = code
                    if "target" in prop_codes and code in self._targets:
                        target = code
        names = [n.name for n in d.deviceName or ()]
        model_kind, model = self.vocab.model_kind(*names, d.modelNumber, d.manufacturer)
        if model:
            model = next((n for n in names if n and model in n.lower()), model)
        return kind or model_kind, model, target

    @staticmethod
    def _resolve_target(targets: list[str]) -> str | None:
        specific = [t for t in targets if t != "spinal"]
        if specific:
            return max(set(specific), key=specific.count)
        return "spinal" if targets else None

    def _performers(self, acc: _Acc, by_type: dict[str, list[Resource]]) -> tuple[Performer, ...]:
        practitioners = {p.id: p for p in by_type["Practitioner"] if p.id}
        roles = {r.id: r for r in by_type["PractitionerRole"] if r.id}
        roles_of: dict[str, list[Any]] = defaultdict(list)
        for r in roles.values():
            pid = _ref_id(r.practitioner)
            if pid:
                roles_of[pid].append(r)
        refs = dict(acc.performer_refs)
        if not any(not sup for sup in refs.values()):
            for ref in acc.order_performer_refs:
                refs.setdefault(ref, False)
        out = []
        for ref, supervising in refs.items():
            rtype, _, rid = ref.rstrip("/").rpartition("/")
            rtype = rtype.split("/")[-1]
            role, credential = None, None
            if rtype == "PractitionerRole" and rid in roles:
                role, credential = self._role_of_role(roles[rid])
                pid = _ref_id(roles[rid].practitioner)
                if role is None and pid in practitioners:
                    role, credential = self._role_of_practitioner(practitioners[pid])
            elif rtype == "Practitioner":
                for r in roles_of.get(rid, ()):
                    role, credential = self._role_of_role(r)
                    if role:
                        break
                if role is None and rid in practitioners:
                    role, credential = self._role_of_practitioner(practitioners[rid])
            performer = Performer(ref, role, credential, supervising)
            out.append(performer)
            acc.note("supervisor" if supervising else "performer", ref, performer.describe())
            if role is not None and not supervising:
                acc.documented.add("doc-performer-attestation")
            if supervising and role == "physician":
                acc.documented.add("doc-supervising-physician")
        return tuple(out)

    def _role_of_role(self, role: Any) -> tuple[str | None, str | None]:
        for concept in list(role.code or ()) + list(role.specialty or ()):
            for system, code, _ in self.vocab.codings(concept):
                if system == "nucc":
                    if code in self.vocab.qual_nucc:
                        q = self.vocab.qual_nucc[code]
                        return q["role"], q["label"]
                    if code.startswith(self.vocab.nucc_physician_prefix):
                        return "physician", "physician"
                elif system == "snomed" and code in self.vocab.qual_snomed:
                    q = self.vocab.qual_snomed[code]
                    return q["role"], q["label"]
        return None, None

    def _role_of_practitioner(self, p: Any) -> tuple[str | None, str | None]:
        ranked: list[tuple[int, str, str]] = []
        order = {"physician": 0, "qhp": 1, "staff": 2}
        for q in p.qualification or ():
            for system, code, _ in self.vocab.codings(q.code):
                if system == "v2_0360" and code.upper() in self.vocab.qual_v2:
                    spec = self.vocab.qual_v2[code.upper()]
                    ranked.append((order[spec["role"]], spec["role"], spec["label"]))
            text = (q.code.text or "").strip().upper() if q.code is not None else ""
            if text in self.vocab.qual_text:
                role = self.vocab.qual_text[text]
                ranked.append((order[role], role, text))
        if not ranked:
            return None, None
        _, role, label = min(ranked)
        return role, label

    def _drug(self, acc: _Acc, medications: dict[str, Any]) -> DrugUse | None:
        for r, _ in acc.drug_sources:
            med_ref = getattr(r, "medicationReference", None)
            mid = _ref_id(med_ref)
            if mid and mid in medications:
                med = medications[mid]
                self._drug_codes(med.code, acc)
                for ing in med.ingredient or ():
                    if ing.strength is not None and acc.concentration is None:
                        acc.concentration = _strength(ing.strength)
        if not acc.drug_sources and not acc.drug_hcpcs:
            return None
        info = self.vocab.drug_for(acc.drug_rxnorm, acc.drug_texts, acc.drug_hcpcs)
        if info is None:
            return None
        amount = None
        ref = _ref(acc.drug_sources[0][0]) if acc.drug_sources else ""
        given = [(r, d) for r, d in acc.drug_sources if r.get_resource_type() == "MedicationAdministration"]
        # what was given counts; the order's dose only when no administration says how much
        sources = given if any(_to_mg(d, acc.concentration) is not None for _, d in given) else acc.drug_sources
        for r, dose in sources:
            mg = _to_mg(dose, acc.concentration)
            if mg is not None:
                amount = (amount or 0.0) + mg
                ref = _ref(r)
        unit_mg = info.unit_value * MASS_TO_MG.get(info.unit, 1.0)
        wasted = _to_mg(acc.wasted, acc.concentration)
        if acc.practice_supplied is None and acc.drug_hcpcs:
            acc.practice_supplied = True
        acc.note("drug", ref, f"refill drug {info.key}" + (f", {_fmt(amount)} mg" if amount is not None else ""))
        return DrugUse(
            info.key, info.hcpcs,
            None if amount is None else amount / unit_mg, f"{_fmt(info.unit_value)} {info.unit}",
            None if wasted is None else wasted / unit_mg,
            acc.single_dose, acc.practice_supplied, ref,
        )

    def _payer(self, coverages: list[Any], acc: _Acc) -> tuple[tuple[str, ...], tuple[str, ...]]:
        ids: list[str] = []
        names: list[str] = []
        for c in coverages:
            if c.status not in (None, "active"):
                continue
            for payor in c.payor or ():
                if payor.identifier is not None and payor.identifier.value:
                    ids.append(f"{payor.identifier.system or ''}|{payor.identifier.value}")
                if payor.display:
                    names.append(payor.display)
            acc.note("payer", _ref(c), "active insurance coverage")
        return tuple(ids), tuple(names)

    def _freeze(self, hook: str, dos: dt.date, pump: Pump, performers: tuple[Performer, ...],
                drug: DrugUse | None, payer_ids: tuple[str, ...], payer_names: tuple[str, ...], acc: _Acc) -> PumpVisit:
        codes = []
        for (system, code), carriers in acc.code_carriers.items():
            refs = tuple(dict.fromkeys(ref for ref, _ in carriers))
            billed = any(kind == "billed" for _, kind in carriers)
            units_by_ref = acc.code_units[(system, code)]
            billed_refs = [ref for ref, kind in carriers if kind == "billed"]
            charge_refs = [r for r in billed_refs if r.startswith("ChargeItem/")]
            counted = charge_refs or billed_refs
            units = int(math.ceil(sum(units_by_ref[r] for r in dict.fromkeys(counted)))) if counted else 1
            codes.append(ChosenCode(
                code, system, refs, tuple(dict.fromkeys(acc.code_modifiers[(system, code)])),
                max(units, 1), tuple(dict.fromkeys(acc.code_reasons[(system, code)])), billed,
            ))
        for code, ref in acc.diagnoses:
            acc.note(f"diagnosis:{code}", ref, f"diagnosis {code}")
        activities = set(acc.activities)
        reprogramming_recorded = "reprogramming" in activities
        refilled = "refill" in activities or acc.refill_draft
        documented_activity = bool(activities or acc.changes or acc.refill_draft)
        source = "documented" if documented_activity else "none"
        analysed = "electronic-analysis" in activities or bool(acc.readings - REFILL_FACTS)
        if not documented_activity:
            family = [self.codes.get(c.code) for c in codes]
            family = [i for i in family if i is not None and i.pump_family]
            if family:
                source = "chosen-code"
                analysed = True
                reprogramming_recorded = any(i.reprogrammed for i in family)
                refilled = any(i.refilled for i in family)
                for i in family:
                    acc.note("activities", next(c.carriers[0] for c in codes if c.code == i.code),
                             f"no activity recorded; taken from the chosen code {i.code}")
        documented = set(acc.documented)
        for parameter in (*acc.readings, *(c.parameter for c in acc.changes)):
            if parameter in PARAMETER_DOCUMENTS:
                documented.add(PARAMETER_DOCUMENTS[parameter])
        if acc.changes:
            documented.add("doc-parameter-change")
        # the drug as the record names it: an admixture or a drug without a J-code documents the refill too
        drug_named = drug is not None or bool(acc.drug_texts or acc.drug_rxnorm or acc.drug_hcpcs)
        if {"volume-instilled", "residual-volume-aspirated"} <= acc.readings and drug_named:
            documented.add("doc-refill-details")
        signature = "signed" if acc.signed else "unsigned" if acc.unsigned else "unknown"
        if acc.signed:
            documented.add("doc-performer-signature")
        # only the documented statement; which diagnoses are pump care is the EM-SAME-DAY rule's data
        separate = "doc-separate-problem" in documented
        implant = any(c.code == "62362" for c in codes)
        return PumpVisit(
            hook=hook,
            date_of_service=dos,
            pump=pump,
            analysed=analysed,
            refilled=refilled,
            reprogramming_recorded=reprogramming_recorded,
            changes=tuple(acc.changes),
            activity_source=source,
            performers=performers,
            qhp_reasons=tuple(dict.fromkeys(acc.qhp_reasons)),
            codes=tuple(codes),
            diagnoses=tuple(dict.fromkeys(acc.diagnoses)),
            drug=drug,
            documented=frozenset(documented),
            payer_identifiers=payer_ids,
            payer_names=payer_names,
            same_session_implant=implant,
            separate_problem=separate,
            signature=signature,
            evidence={k: tuple(v) for k, v in acc.evidence.items()},
        )


def _input_problems(resources: VisitResources) -> tuple[Evidence, ...]:
    """What could not be used as sent: skipped resources and optional data that could not be had."""
    out = []
    for issue in resources.issues:
        if issue.skipped:
            where = "/".join(p for p in (issue.resource_type, issue.resource_id) if p) or "entry"
            out.append(Evidence(f"{issue.location}:{where}", issue.problem))
    for key in resources.unavailable:
        out.append(Evidence(f"prefetch:{key}", "could not be obtained from prefetch or the FHIR server"))
    return tuple(out)


def _words(code: str) -> str:
    """A pumpcds concept as the words of its display (evidence is read by clinicians, not coders)."""
    c = concepts().get(code)
    return c.display[0].lower() + c.display[1:] if c else code.replace("-", " ")


def _fmt(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")


def _concentration(q: Any) -> tuple[float, str] | None:
    """mg (or ug) per mL from a Quantity like 2 mg/mL."""
    unit = (q.code or q.unit or "").replace(" ", "")
    if "/" not in unit or q.value is None:
        return None
    mass, per = unit.split("/", 1)
    if per.lower() not in {"ml", "1ml"} or mass.lower() not in MASS_TO_MG:
        return None
    return float(q.value) * MASS_TO_MG[mass.lower()], "mg"


def _strength(ratio: Any) -> tuple[float, str] | None:
    num, den = ratio.numerator, ratio.denominator
    if num is None or den is None or num.value is None or not den.value:
        return None
    mass = (num.code or num.unit or "").lower()
    per = (den.code or den.unit or "").lower()
    if mass not in MASS_TO_MG or per != "ml":
        return None
    return float(num.value) * MASS_TO_MG[mass] / float(den.value), "mg"


def _to_mg(q: Any, concentration: tuple[float, str] | None) -> float | None:
    if q is None or getattr(q, "value", None) is None:
        return None
    unit = (q.code or q.unit or "").strip().lower()
    value = float(q.value)
    if unit in MASS_TO_MG:
        return value * MASS_TO_MG[unit]
    if unit == "ml" and concentration is not None:
        return value * concentration[0]
    return None

