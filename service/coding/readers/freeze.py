"""The readers' notes -> the `PumpVisit` facts: chosen codes with their units, which activities the
record shows (or, when it shows none, what the chosen pump code implies), the documentation
elements on record, and the signature."""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from ..codetable import CodeTable
from ..visit import ChosenCode, DrugUse, Performer, Pump, PumpVisit
from .notes import VisitNotes

REFILL_FACTS = frozenset({"volume-instilled", "residual-volume-aspirated", "residual-volume-expected"})
# What a parameter read at the analysis documents, whether read unchanged or recorded as a change
# with its previous value (docs/fhir-input.md section 7 says the same, and points here).
PARAMETER_DOCUMENTS = {
    "reservoir-volume": "doc-reservoir-status", "alarm-setting": "doc-alarm-status",
    "next-refill-date": "doc-next-refill-date",
    **{p: "doc-prescription-status" for p in ("daily-dose", "flow-rate", "concentration", "drug", "infusion-mode", "bolus")},
}


@dataclass(frozen=True)
class Activities:
    analysed: bool
    refilled: bool
    reprogramming_recorded: bool
    source: str  # "documented" | "chosen-code" | "none"


def chosen_codes(notes: VisitNotes) -> tuple[ChosenCode, ...]:
    """One ChosenCode per code: every carrier, modifiers, and units from the charges (else the
    orders) that bill it, at least one."""
    codes = []
    for (system, code), carriers in notes.code_carriers.items():
        refs = tuple(dict.fromkeys(ref for ref, _ in carriers))
        billed_refs = [ref for ref, kind in carriers if kind == "billed"]
        charge_refs = [r for r in billed_refs if r.startswith("ChargeItem/")]
        counted = charge_refs or billed_refs
        units_by_ref = notes.code_units[(system, code)]
        units = int(math.ceil(sum(units_by_ref[r] for r in dict.fromkeys(counted)))) if counted else 1
        codes.append(ChosenCode(
            code, system, refs, tuple(dict.fromkeys(notes.code_modifiers[(system, code)])),
            max(units, 1), tuple(dict.fromkeys(notes.code_reasons[(system, code)])), bool(billed_refs),
        ))
    return tuple(codes)


def activities(notes: VisitNotes, codes: tuple[ChosenCode, ...], table: CodeTable) -> Activities:
    """What the record shows was done; with nothing recorded, what the chosen pump code says."""
    done = notes.activities
    documented = bool(done or notes.changes or notes.refill_draft)
    if documented:
        return Activities("electronic-analysis" in done or bool(notes.readings - REFILL_FACTS),
                          "refill" in done or notes.refill_draft, "reprogramming" in done, "documented")
    family = [i for i in (table.get(c.code) for c in codes) if i is not None and i.pump_family]
    if not family:
        return Activities(bool(notes.readings - REFILL_FACTS), notes.refill_draft, False, "none")
    for i in family:
        notes.note("activities", next(c.carriers[0] for c in codes if c.code == i.code),
                   f"no activity recorded; taken from the chosen code {i.code}")
    return Activities(True, any(i.refilled for i in family), any(i.reprogrammed for i in family), "chosen-code")


def documented(notes: VisitNotes, drug: DrugUse | None) -> frozenset[str]:
    """Documentation elements on record, including those the readings and changes document."""
    found = set(notes.documented)
    for parameter in (*notes.readings, *(c.parameter for c in notes.changes)):
        if parameter in PARAMETER_DOCUMENTS:
            found.add(PARAMETER_DOCUMENTS[parameter])
    if notes.changes:
        found.add("doc-parameter-change")
    # the drug as the record names it: an admixture or a drug without a J-code documents the refill too
    drug_named = drug is not None or bool(notes.drug_texts or notes.drug_rxnorm or notes.drug_hcpcs)
    if {"volume-instilled", "residual-volume-aspirated"} <= notes.readings and drug_named:
        found.add("doc-refill-details")
    if notes.signed:
        found.add("doc-performer-signature")
    return frozenset(found)


def freeze(notes: VisitNotes, table: CodeTable, *, hook: str, date_of_service: dt.date, pump: Pump,
           performers: tuple[Performer, ...], drug: DrugUse | None, payer_ids: tuple[str, ...],
           payer_names: tuple[str, ...], **about: Any) -> PumpVisit:
    """`about`: the facts about the call rather than the visit's resources (patient and encounter
    references, input problems, what could not be decided or read)."""
    codes = chosen_codes(notes)
    for code, ref in notes.diagnoses:
        notes.note(f"diagnosis:{code}", ref, f"diagnosis {code}")
    done = activities(notes, codes, table)
    elements = documented(notes, drug)
    return PumpVisit(
        hook=hook,
        date_of_service=date_of_service,
        pump=pump,
        analysed=done.analysed,
        refilled=done.refilled,
        reprogramming_recorded=done.reprogramming_recorded,
        changes=tuple(notes.changes),
        activity_source=done.source,
        performers=performers,
        qhp_reasons=tuple(dict.fromkeys(notes.qhp_reasons)),
        codes=codes,
        diagnoses=tuple(dict.fromkeys(notes.diagnoses)),
        drug=drug,
        documented=elements,
        payer_identifiers=payer_ids,
        payer_names=payer_names,
        # only the documented statement; which diagnoses are pump care is the EM-SAME-DAY rule's data
        separate_problem="doc-separate-problem" in elements,
        signature="signed" if notes.signed else "unsigned" if notes.unsigned else "unknown",
        evidence={k: tuple(v) for k, v in notes.evidence.items()},
        **about,
    )
