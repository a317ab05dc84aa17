"""Suggestions (FHIR actions) for a finding. order-sign edits the draft orders being signed
(ServiceRequest or draft Procedure: update the whole resource, delete by resourceId, or create a
ServiceRequest); encounter close edits the visit's ChargeItems or creates an R4 ChargeItem.
Labels and action descriptions come from cards/cards.yaml through ``say``."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from ..coding.codetable import CPT_SYSTEM, HCPCS_SYSTEM
from ..coding.findings import Finding, FindingKind
from ..fhir.jsonview import codings
from ..fhir.resources import VisitResources
from ..fhir.validate import as_valid_json
from .validation import HookRequest

MODIFIER_EXT = "http://pumpcds.org/fhir/StructureDefinition/billing-modifier"
BILLING_SYSTEMS = (CPT_SYSTEM, HCPCS_SYSTEM)
ORDER_TYPES = ("ServiceRequest", "Procedure")  # draft orders whose `code` carries the billing code
LINE_TYPES = (*ORDER_TYPES, "MedicationRequest")  # draft orders whose modifiers a suggestion may change
Say = Callable[[str], str]


def code_system(code: str, system: str | None = None) -> str:
    """CPT codes are five digits (or 4 digits + letter); HCPCS level II start with a letter."""
    if system:
        return system
    return HCPCS_SYSTEM if code[:1].isalpha() else CPT_SYSTEM


def _replace_coding(resource: dict[str, Any], field: str, code: str, system: str) -> dict[str, Any]:
    """Swap the CPT/HCPCS coding in resource[field].coding, keep every other coding and field."""
    concept = dict(resource.get(field) or {})
    others = [c for c in concept.get("coding") or [] if c.get("system") not in BILLING_SYSTEMS]
    concept["coding"] = [{"system": system, "code": code}] + others
    concept.pop("text", None)  # the old text named the old code
    resource[field] = concept
    return resource


def as_json(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource as valid R4 JSON to send back (whole resource, nothing dropped but nulls); raises
    InvalidResource when it is not valid R4, and the card goes without the suggestion."""
    return as_valid_json(resource)


def _ref(resource: dict[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _suggestion(label: str, actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"uuid": str(uuid.uuid4()), "label": label[:200], "actions": actions}


def _modifier_ext(finding: Finding) -> list[dict[str, Any]]:
    return [{"url": MODIFIER_EXT, "valueCoding": {"system": HCPCS_SYSTEM if any(ch.isalpha() for ch in m) else CPT_SYSTEM,
                                                  "code": m}} for m in finding.modifiers]


def _with_modifiers(body: dict[str, Any], finding: Finding) -> None:
    """The finding's modifiers become the resource's only billing-modifier extensions."""
    if not finding.modifiers:
        return
    body["extension"] = [e for e in body.get("extension", []) if e.get("url") != MODIFIER_EXT] + _modifier_ext(finding)


def build(finding: Finding, request: HookRequest, resources: VisitResources, say: Say) -> list[dict[str, Any]]:
    """The suggestions that make the change a finding asks for, the best one first: a code to bill,
    replace or remove, a modifier to add or remove, a line to add (docs/cards.md, Suggestions)."""
    if finding.code_system and finding.code_system not in BILLING_SYSTEMS:
        return []
    if finding.kind == FindingKind.WARNING:
        return _modifier_or_line(finding, request, resources, say)
    if finding.kind not in (FindingKind.RECOMMENDED_CODE, FindingKind.REPLACE_CODE, FindingKind.DROP_CODE):
        return []
    if request.is_order_sign:
        return _order_sign(finding, request, resources, say)
    return _encounter(finding, request, resources, say)


def _modifier_codes(body: dict[str, Any]) -> list[str]:
    return [(e.get("valueCoding") or {}).get("code") or e.get("valueCode") or ""
            for e in body.get("extension", []) if e.get("url") == MODIFIER_EXT]


def _set_modifiers(body: dict[str, Any], codes: list[str]) -> None:
    others = [e for e in body.get("extension", []) if e.get("url") != MODIFIER_EXT]
    mods = [{"url": MODIFIER_EXT, "valueCoding": {"system": HCPCS_SYSTEM if any(ch.isalpha() for ch in m) else CPT_SYSTEM,
                                                  "code": m}} for m in dict.fromkeys(codes) if m]
    if others or mods:
        body["extension"] = others + mods
    else:
        body.pop("extension", None)
    # modifiers may also ride on the billing coding itself: those go when removed
    concept = body.get("code") or {}
    for coding in concept.get("coding") or []:
        if coding.get("extension"):
            coding["extension"] = [e for e in coding["extension"]
                                   if e.get("url") != MODIFIER_EXT or ((e.get("valueCoding") or {}).get("code")
                                                                        or e.get("valueCode")) in codes]
            if not coding["extension"]:
                coding.pop("extension")


def _lines(finding: Finding, request: HookRequest, resources: VisitResources) -> list[Any]:
    if request.is_order_sign:
        return _affected(finding, resources.orders_of_type(*LINE_TYPES))
    return _affected(finding, resources.of_type("ChargeItem"))


def _modifier_or_line(finding: Finding, request: HookRequest, resources: VisitResources, say: Say) -> list[dict[str, Any]]:
    """Warnings that a modifier or an extra line settles: JZ/JW, a disallowed modifier, an NCCI pair."""
    action = finding.params.get("action")
    where = "order" if request.is_order_sign else "charge"
    if action == "add-line" and finding.code:
        return [_create(finding, request, say)]
    lines = _lines(finding, request, resources)
    if not lines:
        return []
    if action in ("add-modifier", "remove-modifier"):
        actions = []
        for line in lines:
            body = as_json(line)
            current = _modifier_codes(body)
            wanted = ([*current, *finding.modifiers] if action == "add-modifier"
                      else [m for m in current if m not in finding.modifiers])
            _set_modifiers(body, wanted)
            actions.append({"type": "update", "description": say(f"suggestions.{where}.{action}.update"), "resource": body})
        return [_suggestion(say(f"suggestions.{where}.{action}.label"), actions)]
    if action == "drop-or-add-modifier":
        drop = _suggestion(say(f"suggestions.{where}.drop.label"),
                           _deletes(lines, say(f"suggestions.{where}.drop.delete")))
        marked = []
        for line in lines:
            body = as_json(line)
            _set_modifiers(body, [*_modifier_codes(body), *finding.modifiers])
            marked.append({"type": "update", "description": say(f"suggestions.{where}.add-modifier.update"), "resource": body})
        return [drop, _suggestion(say(f"suggestions.{where}.add-modifier.label"), marked)]
    return []


def _create(finding: Finding, request: HookRequest, say: Say) -> dict[str, Any]:
    """A new line for the finding's code (units, modifiers): a draft order, or a ChargeItem at close."""
    ctx = request.context
    system = code_system(finding.code or "", finding.code_system)
    coding = {"coding": [{"system": system, "code": finding.code}]}
    if request.is_order_sign:
        sr: dict[str, Any] = {"resourceType": "ServiceRequest", "status": "draft", "intent": "order", "code": coding,
                              "subject": {"reference": f"Patient/{ctx.get('patientId')}"}}
        if ctx.get("encounterId"):
            sr["encounter"] = {"reference": f"Encounter/{ctx['encounterId']}"}
        if finding.units:
            sr["quantityQuantity"] = {"value": finding.units}
        if finding.modifiers:
            sr["extension"] = _modifier_ext(finding)
        return _suggestion(say("suggestions.order.create.label"),
                           [{"type": "create", "description": say("suggestions.order.create.create"), "resource": sr}])
    charge: dict[str, Any] = {"resourceType": "ChargeItem", "status": "billable", "code": coding,
                              "subject": {"reference": f"Patient/{ctx.get('patientId')}"},
                              "quantity": {"value": finding.units or 1}}
    if ctx.get("encounterId"):
        charge["context"] = {"reference": f"Encounter/{ctx['encounterId']}"}
    if finding.params.get("date_of_service"):
        charge["occurrenceDateTime"] = finding.params["date_of_service"]
    if finding.params.get("performer_reference"):
        charge["performer"] = [{"actor": {"reference": finding.params["performer_reference"]}}]
    if finding.modifiers:
        charge["extension"] = _modifier_ext(finding)
    return _suggestion(say("suggestions.charge.create.label"),
                       [{"type": "create", "description": say("suggestions.charge.create.create"), "resource": charge}])


def _affected(finding: Finding, candidates: list[Any]) -> list[Any]:
    """The resources carrying the wrong code, among those this hook may change."""
    wanted = set(finding.affected)
    return [r for r in candidates if r.get("id") and _ref(r) in wanted]


def _deletes(items: list[Any], description: str) -> list[dict[str, Any]]:
    return [{"type": "delete", "description": description, "resourceId": _ref(i)} for i in items]


def _order_sign(finding: Finding, request: HookRequest, resources: VisitResources, say: Say) -> list[dict[str, Any]]:
    # only the orders being signed are changed; the record's history never is
    orders = _affected(finding, resources.orders_of_type(*ORDER_TYPES))
    if finding.kind == FindingKind.DROP_CODE:
        actions = _deletes(orders, say("suggestions.order.drop.delete"))
        return [_suggestion(say("suggestions.order.drop.label"), actions)] if actions else []
    if not finding.code:
        return []
    system = code_system(finding.code, finding.code_system)
    if finding.kind == FindingKind.REPLACE_CODE and orders:
        first, rest = orders[0], orders[1:]
        body = _replace_coding(as_json(first), "code", finding.code, system)
        _with_modifiers(body, finding)
        if finding.units and first.get("resourceType") == "ServiceRequest":
            body["quantityQuantity"] = {"value": finding.units}
        actions = [{"type": "update", "description": say("suggestions.order.replace.update"), "resource": body}]
        actions += _deletes(rest, say("suggestions.order.replace.delete"))
        return [_suggestion(say("suggestions.order.replace.label"), actions)]
    if finding.kind == FindingKind.RECOMMENDED_CODE and not _carrying(resources.orders_of_type(*LINE_TYPES), finding.code):
        return [_create(finding, request, say)]
    return []


def _carrying(orders: list[Any], code: str) -> bool:
    """A draft order already carries this code (the engine would not recommend it then; belt and braces)."""
    for order in orders:
        concept = order.get("code") or order.get("medicationCodeableConcept")
        if any(c.get("code") == code for c in codings(concept)):
            return True
    return False


def _encounter(finding: Finding, request: HookRequest, resources: VisitResources, say: Say) -> list[dict[str, Any]]:
    items = _affected(finding, resources.of_type("ChargeItem"))
    if finding.kind == FindingKind.DROP_CODE:
        actions = _deletes(items, say("suggestions.charge.drop.delete"))
        return [_suggestion(say("suggestions.charge.drop.label"), actions)] if actions else []
    if not finding.code:
        return []
    system = code_system(finding.code, finding.code_system)
    if items and finding.kind != FindingKind.RECOMMENDED_CODE:
        first, rest = items[0], items[1:]
        body = _replace_coding(as_json(first), "code", finding.code, system)
        _with_modifiers(body, finding)
        if finding.units:
            body["quantity"] = {"value": finding.units}
        actions = [{"type": "update", "description": say("suggestions.charge.replace.update"), "resource": body}]
        actions += _deletes(rest, say("suggestions.charge.replace.delete"))
        return [_suggestion(say("suggestions.charge.replace.label"), actions)]
    return [_create(finding, request, say)]
