"""Suggestions (FHIR actions) for a finding, built as plain FHIR JSON.

What a suggestion may edit comes from the hook's spec (`HookSpec.edits`, services.py): at order-sign
the draft orders being signed (update the whole resource, delete by resourceId, or create a
ServiceRequest); at encounter close the visit's ChargeItems (or create an R4 ChargeItem). What a new
line says about the visit (patient, encounter, date of service, performer) is read from the visit's
typed facts (`VisitFacts`), never from card wording. Labels and action descriptions come from
cards/cards.yaml through ``say``.

Resources arrive as parsed models or as plain JSON dicts: every read goes through `_json`, `_type`
and `_id`, the only places that know which.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..coding.codetable import CPT_SYSTEM, HCPCS_SYSTEM
from ..coding.findings import Finding, FindingKind
from ..coding.visit import PumpVisit
from ..fhir.jsonview import codings
from ..fhir.resources import VisitResources
from ..fhir.validate import as_valid_json
from .models import Action, Suggestion
from .services import Edits

MODIFIER_EXT = "http://pumpcds.org/fhir/StructureDefinition/billing-modifier"
BILLING_SYSTEMS = (CPT_SYSTEM, HCPCS_SYSTEM)
ORDER_TYPES = ("ServiceRequest", "Procedure")  # draft orders whose `code` carries the billing code
LINE_TYPES = (*ORDER_TYPES, "MedicationRequest")  # draft orders whose modifiers a suggestion may change
CODE_KINDS = (FindingKind.RECOMMENDED_CODE, FindingKind.REPLACE_CODE, FindingKind.DROP_CODE)
Say = Callable[[str], str]


# -- the resource helpers: the one place that knows models from JSON ---------------------------------

def _json(resource: Any) -> Mapping[str, Any]:
    """The resource as FHIR JSON, read-only (whole resource, nothing dropped but nulls)."""
    if isinstance(resource, dict):
        return resource
    return resource.model_dump(mode="json", exclude_none=True, by_alias=True)


def _type(resource: Any) -> str:
    return resource["resourceType"] if isinstance(resource, dict) else resource.get_resource_type()


def _id(resource: Any) -> str | None:
    return resource.get("id") if isinstance(resource, dict) else resource.id


def _editable(resource: Any) -> dict[str, Any]:
    """A copy of the resource's JSON that a suggestion may change, checked valid R4 first: nothing
    invalid is ever sent back to the EHR (InvalidResource otherwise)."""
    return as_valid_json(dict(_json(resource)))


def _ref(resource: Any) -> str:
    return f"{_type(resource)}/{_id(resource)}"


# -- the visit's facts a new line carries -------------------------------------------------------------

@dataclass(frozen=True)
class VisitFacts:
    """What a created line says about the visit, from the visit's typed facts."""

    patient: str | None  # "Patient/<id>"
    encounter: str | None  # "Encounter/<id>"
    date_of_service: dt.date | None = None
    performer: str | None = None  # reference of the one who did the work

    @classmethod
    def of(cls, visit: PumpVisit | None, context: Mapping[str, Any]) -> VisitFacts:
        """From the visit when it was read; from the hook's context alone otherwise."""
        if visit is not None:
            return cls(visit.patient_reference, visit.encounter_reference, visit.date_of_service,
                       next((p.reference for p in visit.main_performers), None))
        patient, encounter = context.get("patientId"), context.get("encounterId")
        return cls(f"Patient/{patient}" if isinstance(patient, str) and patient else None,
                   f"Encounter/{encounter}" if isinstance(encounter, str) and encounter else None)


# -- codings and modifiers -------------------------------------------------------------------------------

def code_system(code: str, system: str | None = None) -> str:
    """CPT codes are five digits (or 4 digits + letter); HCPCS level II start with a letter."""
    if system:
        return system
    return HCPCS_SYSTEM if code[:1].isalpha() else CPT_SYSTEM


def _modifier_system(modifier: str) -> str:
    return HCPCS_SYSTEM if any(ch.isalpha() for ch in modifier) else CPT_SYSTEM


def _modifier_ext(modifiers: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    return [{"url": MODIFIER_EXT, "valueCoding": {"system": _modifier_system(m), "code": m}} for m in modifiers]


def _replace_coding(body: dict[str, Any], code: str, system: str) -> None:
    """Swap the CPT/HCPCS coding in body.code, keep every other coding and field."""
    concept = dict(body.get("code") or {})
    others = [c for c in concept.get("coding") or [] if c.get("system") not in BILLING_SYSTEMS]
    concept["coding"] = [{"system": system, "code": code}, *others]
    concept.pop("text", None)  # the old text named the old code
    body["code"] = concept


def _with_modifiers(body: dict[str, Any], finding: Finding) -> None:
    """The finding's modifiers become the resource's only billing-modifier extensions."""
    if finding.modifiers:
        body["extension"] = [e for e in body.get("extension", []) if e.get("url") != MODIFIER_EXT] + \
            _modifier_ext(finding.modifiers)


def _modifier_codes(body: Mapping[str, Any]) -> list[str]:
    return [(e.get("valueCoding") or {}).get("code") or e.get("valueCode") or ""
            for e in body.get("extension", []) if e.get("url") == MODIFIER_EXT]


def _set_modifiers(body: dict[str, Any], codes: list[str]) -> None:
    others = [e for e in body.get("extension", []) if e.get("url") != MODIFIER_EXT]
    mods = _modifier_ext([m for m in dict.fromkeys(codes) if m])
    if others or mods:
        body["extension"] = others + mods
    else:
        body.pop("extension", None)
    # modifiers may also ride on the billing coding itself: those go when removed
    for coding in (body.get("code") or {}).get("coding") or []:
        if coding.get("extension"):
            coding["extension"] = [e for e in coding["extension"]
                                   if e.get("url") != MODIFIER_EXT or ((e.get("valueCoding") or {}).get("code")
                                                                        or e.get("valueCode")) in codes]
            if not coding["extension"]:
                coding.pop("extension")


def _carries(lines: list[Any], code: str) -> bool:
    """A line already carries this code (the engine would not recommend it then; belt and braces)."""
    for line in lines:
        body = _json(line)
        concept = body.get("code") or body.get("medicationCodeableConcept")
        if any(c.get("code") == code for c in codings(concept)):
            return True
    return False


# -- what each hook edits ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Editor:
    """The lines a hook's suggestions change and how a new line is written."""

    edits: Edits

    @property
    def where(self) -> str:  # the wording group in cards/cards.yaml: suggestions.order.* or suggestions.charge.*
        return self.edits.value

    def code_lines(self, resources: VisitResources) -> list[Any]:
        """Lines whose code a suggestion may replace or remove."""
        if self.edits is Edits.DRAFT_ORDERS:
            return [r for r in resources.draft_orders if _type(r) in ORDER_TYPES]
        return [r for r in resources.resources if _type(r) == "ChargeItem"]

    def billing_lines(self, resources: VisitResources) -> list[Any]:
        """Lines whose modifiers a suggestion may change, and that show a code is already billed."""
        if self.edits is Edits.DRAFT_ORDERS:
            return [r for r in resources.draft_orders if _type(r) in LINE_TYPES]
        return [r for r in resources.resources if _type(r) == "ChargeItem"]

    def wants_new_line(self, finding: Finding, resources: VisitResources) -> bool:
        """A code to bill that no line was changed to carry. The ChargeItems are the bill: it gets a
        line. Draft orders get one only for a recommended code no draft carries; a wrong code on what
        cannot be edited (a completed Procedure, an order signed earlier) is left to the card."""
        if self.edits is Edits.CHARGE_ITEMS:
            return True
        return finding.kind == FindingKind.RECOMMENDED_CODE and not _carries(self.billing_lines(resources), finding.code or "")

    def set_units(self, body: dict[str, Any], units: int) -> None:
        if self.edits is Edits.CHARGE_ITEMS:
            body["quantity"] = {"value": units}
        elif body.get("resourceType") == "ServiceRequest":
            body["quantityQuantity"] = {"value": units}

    def new_line(self, finding: Finding, facts: VisitFacts) -> dict[str, Any]:
        """A new line for the finding's code (units, modifiers): a draft ServiceRequest, or an R4 ChargeItem."""
        coding = {"coding": [{"system": code_system(finding.code or "", finding.code_system), "code": finding.code}]}
        body: dict[str, Any]
        if self.edits is Edits.DRAFT_ORDERS:
            body = {"resourceType": "ServiceRequest", "status": "draft", "intent": "order", "code": coding,
                    "subject": {"reference": facts.patient}}
            if facts.encounter:
                body["encounter"] = {"reference": facts.encounter}
            if finding.units:
                body["quantityQuantity"] = {"value": finding.units}
        else:
            body = {"resourceType": "ChargeItem", "status": "billable", "code": coding,
                    "subject": {"reference": facts.patient}, "quantity": {"value": finding.units or 1}}
            if facts.encounter:
                body["context"] = {"reference": facts.encounter}
            if facts.date_of_service:
                body["occurrenceDateTime"] = facts.date_of_service.isoformat()
            if facts.performer:
                body["performer"] = [{"actor": {"reference": facts.performer}}]
        if finding.modifiers:
            body["extension"] = _modifier_ext(finding.modifiers)
        return body


EDITORS = {e: Editor(e) for e in Edits}


# -- suggestions ----------------------------------------------------------------------------------------

def build(finding: Finding, edits: Edits, resources: VisitResources, facts: VisitFacts, say: Say) -> list[Suggestion]:
    """The suggestions that make the change a finding asks for, the best one first: a code to bill,
    replace or remove, a modifier to add or remove, a line to add (docs/cards.md, Suggestions)."""
    if finding.code_system and finding.code_system not in BILLING_SYSTEMS:
        return []
    editor = EDITORS[edits]
    if finding.kind == FindingKind.WARNING:
        return _modifier_or_line(finding, editor, resources, facts, say)
    if finding.kind in CODE_KINDS:
        return _code_change(finding, editor, resources, facts, say)
    return []


def _affected(finding: Finding, candidates: list[Any]) -> list[Any]:
    """The lines carrying the wrong code, among those this hook may change."""
    wanted = set(finding.affected)
    return [r for r in candidates if _id(r) and _ref(r) in wanted]


def _deletes(lines: list[Any], description: str) -> tuple[Action, ...]:
    return tuple(Action.delete(_ref(line), description) for line in lines)


def _suggestion(label: str, actions: tuple[Action, ...]) -> Suggestion:
    return Suggestion(label[:200], actions)


def _create(finding: Finding, editor: Editor, facts: VisitFacts, say: Say) -> Suggestion:
    w = editor.where
    return _suggestion(say(f"suggestions.{w}.create.label"),
                       (Action.create(editor.new_line(finding, facts), say(f"suggestions.{w}.create.create")),))


def _code_change(finding: Finding, editor: Editor, resources: VisitResources, facts: VisitFacts,
                 say: Say) -> list[Suggestion]:
    """A code to remove (delete the lines), replace (update the first line, delete the rest) or add."""
    w = editor.where
    lines = _affected(finding, editor.code_lines(resources))
    if finding.kind == FindingKind.DROP_CODE:
        actions = _deletes(lines, say(f"suggestions.{w}.drop.delete"))
        return [_suggestion(say(f"suggestions.{w}.drop.label"), actions)] if actions else []
    if not finding.code:
        return []
    if lines and finding.kind == FindingKind.REPLACE_CODE:
        first, rest = lines[0], lines[1:]
        body = _editable(first)
        _replace_coding(body, finding.code, code_system(finding.code, finding.code_system))
        _with_modifiers(body, finding)
        if finding.units:
            editor.set_units(body, finding.units)
        actions = (Action.update(body, say(f"suggestions.{w}.replace.update")),
                   *_deletes(rest, say(f"suggestions.{w}.replace.delete")))
        return [_suggestion(say(f"suggestions.{w}.replace.label"), actions)]
    return [_create(finding, editor, facts, say)] if editor.wants_new_line(finding, resources) else []


def _modifier_or_line(finding: Finding, editor: Editor, resources: VisitResources, facts: VisitFacts,
                      say: Say) -> list[Suggestion]:
    """Warnings that a modifier or an extra line settles: JZ/JW, a disallowed modifier, an NCCI pair."""
    action = finding.params.get("action")
    w = editor.where
    if action == "add-line" and finding.code:
        return [_create(finding, editor, facts, say)]
    lines = _affected(finding, editor.billing_lines(resources))
    if not lines:
        return []
    if action in ("add-modifier", "remove-modifier"):
        updates = []
        for line in lines:
            body = _editable(line)
            current = _modifier_codes(body)
            wanted = ([*current, *finding.modifiers] if action == "add-modifier"
                      else [m for m in current if m not in finding.modifiers])
            _set_modifiers(body, wanted)
            updates.append(Action.update(body, say(f"suggestions.{w}.{action}.update")))
        return [_suggestion(say(f"suggestions.{w}.{action}.label"), tuple(updates))]
    if action == "drop-or-add-modifier":
        drop = _suggestion(say(f"suggestions.{w}.drop.label"), _deletes(lines, say(f"suggestions.{w}.drop.delete")))
        marked = []
        for line in lines:
            body = _editable(line)
            _set_modifiers(body, [*_modifier_codes(body), *finding.modifiers])
            marked.append(Action.update(body, say(f"suggestions.{w}.add-modifier.update")))
        return [drop, _suggestion(say(f"suggestions.{w}.add-modifier.label"), tuple(marked))]
    return []
