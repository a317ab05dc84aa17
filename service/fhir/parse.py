"""Parse FHIR R4 JSON into fhir.resources R4B models, only for the types the coding rules read."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from ..jsondepth import DEFAULT_MAX_DEPTH, too_deep
from .normalize import drop_paths, normalize_resource, wrap_in_list
from .resources import ResourceIssue

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


# nested single objects (dosageInstruction, then its doseAndRate) surface one level per round
MAX_REPAIR_ROUNDS = 4


def _summarise(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:3]:
        loc = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{loc or '(resource)'}: {e.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


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


def parse_resource(
    raw: Any, location: str, max_depth: int = DEFAULT_MAX_DEPTH
) -> tuple[Resource | None, list[ResourceIssue]]:
    """One resource: normalise, validate, drop unknown elements once; never raises."""
    problem = not_a_resource(raw)
    if problem:
        return None, [ResourceIssue(location, None, None, problem)]
    rtype = raw["resourceType"]
    if rtype not in USED_TYPES and rtype != "MedicationOrder":
        return None, []
    rid = raw.get("id") if isinstance(raw.get("id"), str) else None
    if too_deep(raw, max_depth) is not None:  # before the recursive repairs and validation
        return None, [ResourceIssue(location, rtype, rid, f"nested more than {max_depth} levels deep; not read")]
    data, repairs = normalize_resource(raw, draft_order=location.startswith("draftOrders"))
    if data is None:
        return None, [ResourceIssue(location, rtype, rid, "resource is empty")]
    rtype = data.get("resourceType", rtype)
    if rtype not in USED_TYPES:
        return None, []
    cls = get_fhir_model_class(rtype)
    issues: list[ResourceIssue] = []
    for attempt in range(MAX_REPAIR_ROUNDS + 1):
        try:
            model = cls.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors()
            extra = [e["loc"] for e in errors if e.get("type") == "extra_forbidden"]
            # a single object where R4 wants a list (real clients send e.g. category, dosageInstruction,
            # doseAndRate that way): the meaning is unambiguous, so it is read as a one-item list
            single = [e["loc"] for e in errors if e.get("type") == "list_type" and isinstance(e.get("input"), dict)]
            if attempt < MAX_REPAIR_ROUNDS and (extra or single) and len(extra) + len(single) == len(errors):
                if single:
                    wrap_in_list(data, single)
                    repairs.append("single object read as a list: " + ", ".join(".".join(map(str, loc)) for loc in single[:5]))
                if extra:
                    drop_paths(data, extra)
                    repairs.append("ignored unknown element(s): " + ", ".join(".".join(map(str, loc)) for loc in extra[:5]))
                continue
            return None, [ResourceIssue(location, rtype, rid, "not valid FHIR R4: " + _summarise(errors))]
        except (TypeError, ValueError) as exc:  # defensive: odd input the models choke on
            return None, [ResourceIssue(location, rtype, rid, f"not valid FHIR R4: {type(exc).__name__}")]
        break
    if repairs:
        issues.append(ResourceIssue(location, rtype, model.id, "; ".join(repairs[:5]), skipped=False))
    return model, issues


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
    use it, so it is not worth validating (prefetch searches by patient return the whole history)."""
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
) -> tuple[list[Resource], list[ResourceIssue]]:
    """Parse resources (and Bundles' entries); with `encounter_id`, resources of other encounters
    are left unparsed. A resource nested deeper than `max_depth` is skipped and reported (Bundles
    within Bundles recurse here at most a third of the JSON parser's 1,024 levels)."""
    models: list[Resource] = []
    issues: list[ResourceIssue] = []
    for raw in items:
        if isinstance(raw, dict) and raw.get("resourceType") == "Bundle":
            inner, inner_issues = parse_many(bundle_entries(raw), location, encounter_id, max_depth)
            models.extend(inner)
            issues.extend(inner_issues)
            continue
        if encounter_id and of_other_encounter(raw, encounter_id):
            continue
        model, found = parse_resource(raw, location, max_depth)
        issues.extend(found)
        if model is not None:
            models.append(model)
    return models, issues


def warm_up() -> None:
    """Import every model class the rules read at start, so the first hook call after a start does
    not spend its FHIR time budget on imports (issue 11: measured up to half a second cold)."""
    for rtype in USED_TYPES:
        get_fhir_model_class(rtype)
