"""From the FHIR JSON of one hook call to the `PumpVisit` facts (docs/fhir-input.md).

`VisitReader` decides which resources belong to the visit (readers/scope.py) and hands each to the
reader of its type (service/coding/readers/), in one pass per type; nothing here decides a code.
What the visit shows is noted with its evidence (resource reference and a PHI-free statement) so
every finding can say which resource made it fire.
"""
from __future__ import annotations

from collections import defaultdict

from ..fhir.jsonview import JSON, first_day, resource_id
from ..fhir.parse import ENCOUNTER_ELEMENT
from ..fhir.resources import VisitResources
from . import unknowns
from .codetable import CodeTable
from .findings import Evidence
from .readers import chargeitem, coverage, device, encounter, medication, observation, practitioner, procedure, servicerequest
from .readers.freeze import freeze
from .readers.notes import VisitNotes
from .readers.scope import Scope, date_of_service
from .readers.terms import INACTIVE, Terms
from .visit import PumpVisit
from .vocabulary import Vocabulary

# the visit's orders and charges, read for the codes chosen on them
BILLABLE = ("ServiceRequest", "ChargeItem", "MedicationRequest")


class VisitReader:
    """Builds a `PumpVisit` from `VisitResources`; holds only lookup tables, so one per app."""

    def __init__(self, vocabulary: Vocabulary, code_table: CodeTable) -> None:
        self.vocab = vocabulary
        self.codes = code_table
        self.terms = Terms(vocabulary, code_table)

    def read(self, resources: VisitResources) -> PumpVisit:
        terms, usable = self.terms, resources.confirm
        context = resources.context
        encounter_id = context.get("encounterId") if isinstance(context.get("encounterId"), str) else None
        by_type: dict[str, list[JSON]] = defaultdict(list)
        for r in resources.resources:
            by_type[str(r.get("resourceType"))].append(r)
        drafts = [r for r in resources.draft_orders if usable(r)]
        scope = Scope(encounter_id, date_of_service(drafts, by_type["Encounter"], by_type["Procedure"], encounter_id, usable))
        notes = VisitNotes()
        for r in drafts:
            self._read_draft(r, notes)
        in_scope: list[JSON] = []
        for p in by_type["Procedure"]:
            if procedure.in_visit(p, scope) and usable(p):
                in_scope.append(p)
                procedure.read(p, notes, terms)
        for o in by_type["Observation"]:
            if observation.in_visit(o, scope) and usable(o):
                in_scope.append(o)
                observation.read(o, notes, terms)
        administrations = [m for m in by_type["MedicationAdministration"] if medication.given_in_visit(m, scope) and usable(m)]
        for kind in BILLABLE:
            for r in by_type[kind]:
                if r.get("status") not in INACTIVE and scope.contains(
                        r, ENCOUNTER_ELEMENT[kind], "occurrenceDateTime", "authoredOn", "enteredDate") and usable(r):
                    self._read_billable(r, notes, draft=False)
        for c in by_type["Condition"]:
            if encounter.condition_in_visit(c, scope) and usable(c):
                encounter.read_condition(c, notes, terms)
        for e in by_type["Encounter"]:
            if encounter_id and resource_id(e) == encounter_id and usable(e):
                encounter.read_encounter(e, notes, terms)

        devices = [d for d in by_type["Device"] if usable(d)]
        kinds = {id(d): device.kind_of(d, terms) for d in devices}
        medication.read_administrations(administrations, device.implanted_ids(devices, kinds),
                                        self._refill_elsewhere(notes, devices, kinds), notes, terms)
        pump = device.pump(devices, kinds, notes)
        performers = practitioner.performers(notes, terms, by_type["Practitioner"], by_type["PractitionerRole"], usable)
        medications = {rid: m for m in by_type["Medication"] if (rid := resource_id(m))}
        drug = medication.drug(notes, terms, lambda mid: m if (m := medications.get(mid)) is not None and usable(m) else None)
        payer_ids, payer_names = coverage.payer(
            [c for c in by_type["Coverage"] if c.get("status") in (None, "active") and usable(c)], notes)
        patient = context.get("patientId") if isinstance(context.get("patientId"), str) else None
        undecided, unreadable = unknowns.assess(resources, unknowns.local_code_resources(in_scope, self.vocab))
        return freeze(notes, self.codes, hook=resources.hook, date_of_service=scope.date_of_service, pump=pump,
                      performers=performers, drug=drug, payer_ids=payer_ids, payer_names=payer_names,
                      undecided=undecided, unreadable=unreadable,
                      patient_reference=f"Patient/{patient}" if patient else None,
                      encounter_reference=f"Encounter/{encounter_id}" if encounter_id else None,
                      input_problems=_input_problems(resources))

    def _read_draft(self, r: JSON, notes: VisitNotes) -> None:
        self._read_billable(r, notes, draft=True)
        if first_day(r, "occurrenceDateTime", "authoredOn"):
            notes.documented.add("doc-visit-date")

    def _read_billable(self, r: JSON, notes: VisitNotes, draft: bool) -> None:
        """An order, charge, draft Procedure or drug order carrying codes chosen for the visit."""
        rtype = r.get("resourceType")
        if rtype == "Procedure":
            if draft:
                procedure.read(r, notes, self.terms, billed=True)
        elif rtype == "MedicationRequest":
            medication.read_request(r, notes, self.terms, draft)
        elif rtype == "ServiceRequest":
            servicerequest.read(r, notes, self.terms)
        elif rtype == "ChargeItem":
            chargeitem.read(r, notes, self.terms)

    def _refill_elsewhere(self, notes: VisitNotes, devices: list[JSON], kinds: dict[int, device.Kind]) -> bool:
        """Does the visit show a refill apart from the drugs given (a refill activity or facts, a refill
        drug order, a chosen refill code), or an implanted pump on record?"""
        chosen_refill = any(
            (info := self.codes.get(code)) is not None and info.pump_family and info.refilled
            for _, code in notes.code_carriers
        )
        return ("refill" in notes.activities or notes.refill_draft or chosen_refill
                or bool(device.implanted_ids(devices, kinds)))


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
