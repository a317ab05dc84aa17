"""Suggestions (FHIR actions) for a finding: order-sign edits draft ServiceRequests,
encounter close edits or creates R4 ChargeItems. Wording stays in cards.py."""
from __future__ import annotations

import uuid
from typing import Any

from ..coding.codetable import CPT_SYSTEM, HCPCS_SYSTEM
from ..coding.findings import Finding, FindingKind
from ..fhir.resources import VisitResources
from .validation import HookRequest

MODIFIER_EXT = "http://pumpcds.org/fhir/StructureDefinition/billing-modifier"
BILLING_SYSTEMS = (CPT_SYSTEM, HCPCS_SYSTEM)


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


def as_json(resource: Any) -> dict[str, Any]:
    """A parsed R4B resource as plain FHIR JSON (whole resource, nothing dropped but nulls)."""
    import json

    return json.loads(resource.model_dump_json(exclude_none=True, by_alias=True))


def _ref(resource: Any) -> str:
    return f"{resource.get_resource_type()}/{resource.id}"


def _suggestion(label: str, actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"uuid": str(uuid.uuid4()), "label": label[:200], "actions": actions}


def build(finding: Finding, request: HookRequest, resources: VisitResources) -> list[dict[str, Any]]:
    """Zero or one suggestion for this finding (only code changes are actionable)."""
    if finding.code_system and finding.code_system not in BILLING_SYSTEMS:
        return []
    if finding.kind not in (FindingKind.RECOMMENDED_CODE, FindingKind.REPLACE_CODE, FindingKind.DROP_CODE):
        return []
    if request.is_order_sign:
        return _order_sign(finding, request, resources)
    return _encounter(finding, request, resources)


def _affected(finding: Finding, resources: VisitResources, rtype: str) -> list[Any]:
    found = [resources.by_reference(r) for r in finding.affected]
    return [r for r in found if r is not None and r.get_resource_type() == rtype]


def _order_sign(finding: Finding, request: HookRequest, resources: VisitResources) -> list[dict[str, Any]]:
    orders = _affected(finding, resources, "ServiceRequest")
    ctx = request.context
    if finding.kind == FindingKind.DROP_CODE:
        actions = [{"type": "delete", "description": f"Remove the order for {', '.join(finding.replaces)}",
                    "resourceId": _ref(o)} for o in orders if o.id]
        return [_suggestion(f"Remove {', '.join(finding.replaces)}", actions)] if actions else []
    if not finding.code:
        return []
    system = code_system(finding.code, finding.code_system)
    if finding.kind == FindingKind.REPLACE_CODE and orders:
        first, rest = orders[0], orders[1:]
        body = _replace_coding(as_json(first),
                               "code", finding.code, system)
        actions = [{"type": "update", "description": f"Order {finding.code} instead of {', '.join(finding.replaces)}",
                    "resource": body}]
        actions += [{"type": "delete", "description": "Remove the order that carried the replaced code",
                     "resourceId": _ref(o)} for o in rest if o.id]
        return [_suggestion(f"Use {finding.code}", actions)]
    if finding.kind == FindingKind.RECOMMENDED_CODE and not resources.orders_of_type("ServiceRequest"):
        sr: dict[str, Any] = {"resourceType": "ServiceRequest", "status": "draft", "intent": "order",
                              "code": {"coding": [{"system": system, "code": finding.code}]},
                              "subject": {"reference": f"Patient/{ctx.get('patientId')}"}}
        if ctx.get("encounterId"):
            sr["encounter"] = {"reference": f"Encounter/{ctx['encounterId']}"}
        return [_suggestion(f"Order {finding.code}", [{"type": "create", "description": f"Add an order for {finding.code}",
                                                       "resource": sr}])]
    return []


def _modifier_ext(finding: Finding) -> list[dict[str, Any]]:
    return [{"url": MODIFIER_EXT, "valueCoding": {"system": HCPCS_SYSTEM if any(ch.isalpha() for ch in m) else CPT_SYSTEM,
                                                  "code": m}} for m in finding.modifiers]


def _encounter(finding: Finding, request: HookRequest, resources: VisitResources) -> list[dict[str, Any]]:
    items = _affected(finding, resources, "ChargeItem")
    ctx = request.context
    if finding.kind == FindingKind.DROP_CODE:
        actions = [{"type": "delete", "description": f"Remove the charge for {', '.join(finding.replaces)}",
                    "resourceId": _ref(i)} for i in items if i.id]
        return [_suggestion(f"Remove {', '.join(finding.replaces)}", actions)] if actions else []
    if not finding.code:
        return []
    system = code_system(finding.code, finding.code_system)
    if items:
        body = as_json(items[0])
        body = _replace_coding(body, "code", finding.code, system)
        if finding.modifiers:
            body["extension"] = [e for e in body.get("extension", []) if e.get("url") != MODIFIER_EXT] + _modifier_ext(finding)
        if finding.units:
            body["quantity"] = {"value": finding.units}
        return [_suggestion(f"Charge {finding.code}", [{"type": "update", "resource": body,
                                                        "description": f"Charge {finding.code} instead of {', '.join(finding.replaces) or 'the current code'}"}])]
    charge: dict[str, Any] = {"resourceType": "ChargeItem", "status": "billable",
                              "code": {"coding": [{"system": system, "code": finding.code}]},
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
    return [_suggestion(f"Charge {finding.code}", [{"type": "create", "description": f"Add a charge for {finding.code}",
                                                    "resource": charge}])]
