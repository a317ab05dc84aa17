"""Procedure: the pump activities done (analysis, reprogramming, refill), when and for how long,
where the drug goes, on which device, by whom, why; and CPT/HCPCS codes it records."""
from __future__ import annotations

import datetime as dt

from ...fhir.jsonview import JSON, child, first_day, items, ref_of, reference
from ..vocabulary import PUMPCDS
from .codes import add_code, billing_codes
from .notes import VisitNotes
from .scope import Scope
from .terms import INACTIVE, Terms, words

ACTIVITIES = frozenset({"electronic-analysis", "reprogramming", "refill", "port-irrigation"})


def performed(p: JSON) -> dt.date | None:
    return first_day(p, "performedDateTime", "performedPeriod")


def in_visit(p: JSON, scope: Scope) -> bool:
    return p.get("status") not in INACTIVE and scope.contains(p, "encounter", "performedDateTime", "performedPeriod")


def read(p: JSON, notes: VisitNotes, terms: Terms, billed: bool = False) -> None:
    """`billed`: a draft Procedure being signed, whose codes are the ones chosen to bill."""
    ref = ref_of(p)
    day = performed(p)
    activities = set()
    for system, code, _ in terms.codings(p.get("code")):
        if system == PUMPCDS and code in ACTIVITIES:
            activities.add(code)
    for key in billing_codes(p.get("code"), terms):
        add_code(notes, terms, key, p, billed=billed, reasons=items(p.get("reasonCode")),
                 day=first_day(p, "performedDateTime"))
    for a in sorted(activities):
        notes.activities.add(a)
        notes.note(a, ref, f"{words(a)} done", day)
    if day:
        notes.documented.add("doc-visit-date")
    period = child(p, "performedPeriod")
    if period is not None and period.get("start") and period.get("end"):
        notes.documented.add("doc-duration")
    for site in items(p.get("bodySite")):
        terms.target_from(site, notes, ref)
    for focal in items(p.get("focalDevice")):
        device = reference(focal.get("manipulated"))
        if device:
            notes.device_refs.append(device)
    _performers(p, notes, terms)
    _reasons(p, activities, notes, terms, ref, day)


def _performers(p: JSON, notes: VisitNotes, terms: Terms) -> None:
    for perf in items(p.get("performer")):
        actor = reference(perf.get("actor"))
        if not actor:
            continue
        supervising = any(code == "supervising-physician" for _, code, _ in terms.codings(perf.get("function")))
        notes.performer_refs[actor] = notes.performer_refs.get(actor, False) or supervising


def _reasons(p: JSON, activities: set[str], notes: VisitNotes, terms: Terms, ref: str, day: dt.date | None) -> None:
    """Why: a QHP-skill reason, diagnoses, or a stated reason, which documents the indication (and
    the reason for a change when reprogrammed)."""
    for reason in items(p.get("reasonCode")):
        matched = False
        for system, code, _ in terms.codings(reason):
            if system == PUMPCDS and code in terms.qhp_reasons:
                notes.qhp_reasons.append(code)
                notes.note("qhp-reason", ref, f"physician/QHP skill needed: {words(code)}", day)
                matched = True
            elif system == "icd10cm":
                notes.diagnoses.append((code, ref))
        if not matched:
            if "reprogramming" in activities:
                notes.documented.add("doc-change-reason")
            if "electronic-analysis" in activities or not activities:
                notes.documented.add("doc-indication")
    if items(p.get("reasonReference")):
        if "reprogramming" in activities:
            notes.documented.add("doc-change-reason")
        notes.documented.add("doc-indication")
