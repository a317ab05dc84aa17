"""Read FHIR R4 JSON in: only the types the visit facts read, converted (normalize.py), the elements
the facts read type-checked and mended (shapes.py), and with `fhir_validation: strict` every
element repaired and the resource validated with the R4 models (validate.py). The result is JSON,
never a model (the caller's own JSON when nothing needed mending); a resource that cannot be used
is skipped and reported as a `ResourceIssue`."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ..jsondepth import DEFAULT_MAX_DEPTH, text_deeper_than, too_deep
from . import shape_schema, shapes, validate
from .normalize import _clean, convert
from .resources import JSON, ResourceIssue
from .validate import DEFAULT_VALIDATION, Validation

# The resource types the facts builder reads. Everything else is ignored without parsing.
USED_TYPES = frozenset(
    {
        "Device",
        "Procedure",
        "Observation",
        "MedicationAdministration",
        "MedicationRequest",
        "Medication",
        "ServiceRequest",
        "DeviceRequest",
        "ChargeItem",
        "Practitioner",
        "PractitionerRole",
        "Encounter",
        "Coverage",
        "Condition",
    }
)

_JSON_TYPE = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true/false"}


def not_a_resource(raw: Any) -> str | None:
    """Why `raw` cannot be read as a FHIR resource at all, or None."""
    if raw is None:
        return "entry is not a FHIR resource (missing or null)"
    if not isinstance(raw, dict):
        return f"entry is not a FHIR resource ({_JSON_TYPE.get(type(raw), 'another value')}, not a JSON object)"
    if "resourceType" not in raw:
        return "entry is not a FHIR resource (no resourceType)"
    if not isinstance(raw["resourceType"], str):
        return "entry is not a FHIR resource (resourceType is not a string)"
    return None


def _nested_too_deep(raw: dict[str, Any], max_depth: int) -> bool:
    """Deeper than `max_depth`? A resource with fewer brackets than that cannot be: counted on its
    compact JSON first (C speed); else judged from that text as request bodies are, walked only
    when the text cannot tell."""
    try:
        text = orjson.dumps(raw)
    except (orjson.JSONEncodeError, TypeError):
        return too_deep(raw, max_depth) is not None
    if text.count(b"{") + text.count(b"[") <= max_depth:
        return False
    deeper = text_deeper_than(text, max_depth)
    return deeper if deeper is not None else too_deep(raw, max_depth) is not None


def parse_resource(
    raw: Any, location: str, max_depth: int = DEFAULT_MAX_DEPTH, validation: str = DEFAULT_VALIDATION
) -> tuple[JSON | None, list[ResourceIssue]]:
    """One resource: normalise, check the elements the facts read, validate when `strict`;
    never raises. Returns the JSON to read (None when skipped) and what was found."""
    problem = not_a_resource(raw)
    if problem:
        return None, [ResourceIssue(location, None, None, problem)]
    rtype = raw["resourceType"]
    if rtype not in USED_TYPES and rtype != "MedicationOrder":
        return None, []
    rid = raw.get("id") if isinstance(raw.get("id"), str) else None
    if _nested_too_deep(raw, max_depth):  # before the recursive repairs and validation
        return None, [ResourceIssue(location, rtype, rid, f"nested more than {max_depth} levels deep; not read")]
    data, repairs = convert(raw, draft_order=location.startswith("draftOrders"))
    rtype = data.get("resourceType", rtype)
    if rtype not in USED_TYPES:
        return None, []
    if validation == Validation.STRICT:
        cleaned = _clean(data, None, repairs, "")
        if cleaned is None:
            return None, [ResourceIssue(location, rtype, rid, "resource is empty")]
        model, data, invalid, more = validate.r4(cleaned)
        repairs.extend(more)
        if model is None:
            return None, [ResourceIssue(location, rtype, rid, invalid or "not valid FHIR R4")]
    checked = shape_schema.checked(data)
    if checked.problems:
        return None, [ResourceIssue(location, rtype, rid, "not valid FHIR R4: " + _summary(checked.problems))]
    if checked.wraps or checked.mends:
        data = shapes.mended(data, checked)
        repairs.extend(checked.repairs)
    if repairs:
        rid = data.get("id") if isinstance(data.get("id"), str) else rid
        return data, [ResourceIssue(location, rtype, rid, "; ".join(repairs[:5]), skipped=False)]
    return data, []


def _summary(problems: list[str]) -> str:
    more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more


def bundle_problem(value: Any) -> str | None:
    """What makes a Bundle unreadable as a whole (its entries and paging), or None. Applies to a
    client's prefetch and to every search page a FHIR server returns."""
    if not (isinstance(value, dict) and value.get("resourceType") == "Bundle"):
        return None
    for name in ("entry", "link"):
        if name in value and not isinstance(value[name], list):
            return f"a Bundle whose '{name}' is not a list"
    for link in value.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and not isinstance(link.get("url"), str):
            return "a Bundle whose 'next' link has no URL"
    return None


def bundle_entries(bundle: dict[str, Any]) -> list[Any]:
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return []
    return [e.get("resource") if isinstance(e, dict) else e for e in entries]


# Where each visit-scoped type names its encounter (R4).
ENCOUNTER_ELEMENT = {
    "Procedure": "encounter",
    "Observation": "encounter",
    "Condition": "encounter",
    "ServiceRequest": "encounter",
    "MedicationRequest": "encounter",
    "MedicationAdministration": "context",
    "ChargeItem": "context",
}


def of_other_encounter(raw: Any, encounter_id: str) -> bool:
    """True for a resource that names an encounter other than this visit's: the visit facts never
    use it, so it is not worth reading in (prefetch searches by patient return the whole history)."""
    rtype = raw.get("resourceType") if isinstance(raw, dict) else None
    if not isinstance(rtype, str):
        return False
    element = ENCOUNTER_ELEMENT.get(rtype)
    ref = raw.get(element) if element else None
    text = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(text, str) or "/" not in text:
        return False
    kind, _, rid = text.strip().rstrip("/").rpartition("/")
    return kind.endswith("Encounter") and rid.strip() != encounter_id


def parse_many(
    items: Iterable[Any],
    location: str,
    encounter_id: str | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    validation: str = DEFAULT_VALIDATION,
) -> tuple[list[JSON], list[ResourceIssue]]:
    """Read resources (and Bundles' entries); with `encounter_id`, resources of other encounters
    are left unread. A resource nested deeper than `max_depth` is skipped and reported (Bundles
    within Bundles recurse here at most a third of the JSON parser's 1,024 levels)."""
    out: list[JSON] = []
    issues: list[ResourceIssue] = []
    for raw in items:
        if isinstance(raw, dict) and raw.get("resourceType") == "Bundle":
            inner, inner_issues = parse_many(bundle_entries(raw), location, encounter_id, max_depth, validation)
            out.extend(inner)
            issues.extend(inner_issues)
            continue
        if encounter_id and of_other_encounter(raw, encounter_id):
            continue
        data, found = parse_resource(raw, location, max_depth, validation)
        issues.extend(found)
        if data is not None:
            out.append(data)
    return out, issues


def warm_up() -> None:
    """Import every model class the rules read at start (validation and suggestions use them)."""
    validate.warm_up(USED_TYPES)
