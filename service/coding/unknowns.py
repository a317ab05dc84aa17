"""What the visit's data could not tell, in a clinician's words (issue 11: unknown is not no).

Two outputs for `PumpVisit`:
- `undecided`: facts that decide between pump codes (reprogrammed, refilled, qhp_performed) whose
  data could not be had: a fetch failed, timed out or answered the wrong resource type, or the
  site's local codes are not mapped. The engine then names the candidate codes and the fact
  instead of taking the lower code.
- `unreadable`: one line per thing that could not be read, for the single data card: what it was
  (in clinical terms) and why, with no resource ids, prefetch key names or validator messages.
"""
from __future__ import annotations

from collections.abc import Iterable

from ..fhir.jsonview import JSON, codings, text
from ..fhir.resources import VisitResources
from .vocabulary import Vocabulary

# what each prefetch key, or referenced resource type, holds, in clinical terms
SUBJECT = {
    "device": "the patient's implanted pump record",
    "procedures": "the visit's procedures",
    "observations": "the pump readings and settings",
    "medicationAdministrations": "the drugs given at the visit",
    "coverage": "insurance coverage",
    "practitioner": "who performed the service and their credentials",
    "practitionerRoles": "who performed the service and their credentials",
    "Practitioner": "who performed the service and their credentials",
    "PractitionerRole": "who performed the service and their credentials",
    "Device": "the patient's implanted pump record",
    "encounter": "the encounter",
    "chargeItems": "the charges entered",
    "Procedure": "procedure records",
    "Observation": "pump readings or settings",
    "MedicationAdministration": "records of drugs given",
    "MedicationRequest": "drug orders",
    "ServiceRequest": "orders",
    "ChargeItem": "charges",
    "Coverage": "insurance coverage",
    "Encounter": "the encounter",
    "Condition": "diagnoses",
    "Medication": "drug details",
}
# which code-deciding fact each key's loss leaves open
DECIDES = {
    "observations": ("reprogrammed", "refilled"),
    "medicationAdministrations": ("refilled",),
    "practitioner": ("qhp_performed",),
    "practitionerRoles": ("qhp_performed",),
    "Practitioner": ("qhp_performed",),
    "PractitionerRole": ("qhp_performed",),
}
FACT_WORDS = {
    "reprogrammed": "whether the pump was reprogrammed",
    "refilled": "whether the pump was refilled",
    "qhp_performed": "whether a physician or other qualified professional did the work",
}
def _why(problem: str) -> str:
    p = problem.lower()
    if "time budget" in p:
        return "the record system did not answer in time"
    if "unreachable" in p:
        return "the record system could not be reached"
    if "instead of" in p or "wrong" in p or "not a bundle" in p:
        return "the record system answered with a different kind of record"
    if "http" in p and "answered" in p:
        return "the record system answered with an error"
    if "not json" in p or "not a fhir resource" in p or "too large" in p:
        return "the record system's answer could not be read"
    if "prefetch failed" in p or "operationoutcome" in p:
        return "the EHR could not retrieve it"
    if "cannot be fetched" in p or "not contacted" in p:
        return "it was not sent and pumpcds has no access to the record system"
    if "pages" in p or "cap" in p:
        return "it was too long to read in full"
    return "it could not be read"


def _subject_of(key: str) -> tuple[str, str]:
    """(subject words, decides-key) for 'key' or 'Type/id'."""
    head = key.split("/")[0]
    return SUBJECT.get(head, "part of the record"), head


def local_code_resources(visit_resources: Iterable[JSON], vocabulary: Vocabulary) -> list[str]:
    """Types of the visit's Procedures/Observations coded only with unmapped site-local codes."""
    found = []
    mapping = vocabulary.site_mapping
    for r in visit_resources:
        rtype = r.get("resourceType")
        if rtype != "Procedure" and rtype != "Observation":
            continue
        understood = False
        local = False
        for c in codings(r.get("code")):
            system, standing = vocabulary.standing(c.get("system"))
            if standing == "known" or (mapping and (system, (text(c.get("code")) or "").strip()) in mapping):
                understood = True
            elif standing == "local":
                local = True
        if local and not understood:
            found.append(str(rtype))
    return found


def assess(resources: VisitResources, local_types: list[str]) -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    """(undecided fact -> why, in words; unreadable (subject, why) lines, one per subject)."""
    undecided: dict[str, str] = {}
    lines: dict[str, str] = {}
    for entry in resources.unavailable:
        key, _, problem = entry.partition(": ")
        subject, head = _subject_of(key)
        why = _why(problem)
        lines.setdefault(subject, f"could not be read: {why}")
        if "cannot be fetched" in problem:
            continue  # the client chose not to send it and there is no server to ask: not a failure
        for fact in DECIDES.get(head, ()):
            undecided.setdefault(fact, f"{subject} could not be read ({why})")
    skipped: dict[str, int] = {}
    for issue in resources.issues:
        if issue.skipped:
            subject = SUBJECT.get(issue.resource_type or "", "record entries")
            skipped[subject] = skipped.get(subject, 0) + 1
    for subject, n in skipped.items():
        lines.setdefault(subject, f"{n} {'entry' if n == 1 else 'entries'} could not be read (not in the expected format); "
                                  "the EHR team can check how they are sent")
    if local_types:
        n = len(local_types)
        what = "procedures" if "Procedure" in local_types else "pump readings"
        lines.setdefault(
            f"{what} recorded with this site's own codes",
            f"{n} {'entry is' if n == 1 else 'entries are'} coded with local codes that are not mapped: ask your "
            "administrator to set the site mapping",
        )
        reason = "the site's own codes for them are not mapped"
        undecided.setdefault("reprogrammed", f"the visit's {what} could not be read ({reason})")
        undecided.setdefault("refilled", f"the visit's {what} could not be read ({reason})")
    return undecided, tuple(lines.items())
