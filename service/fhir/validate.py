"""Full FHIR R4 validation with the fhir.resources R4B models, and how much of it a call gets.

`fhir_validation` (service/config.py, docs/architecture.md "Reading FHIR"):
- `off`: no model validation; the facts read the JSON, whose read elements are type-checked
  (shapes.py) on every resource;
- `relevant`: also validate, with the models, each resource the facts take something from
  (`VisitResources.confirm`);
- `strict`: validate every resource of a type the facts read as it is read in (the behaviour
  before the JSON reader, and what `pumpcds evaluate --strict` uses).
A resource that fails is skipped and reported (DQ-INPUT) in every mode. Resources a suggestion
sends back to the EHR are always validated (`as_valid_json`), so pumpcds never emits invalid R4.
"""
from __future__ import annotations

from enum import StrEnum
from typing import Any

import orjson

from .normalize import drop_paths, normalize_resource, wrap_in_list
from .resources import JSON, ResourceIssue


class Validation(StrEnum):
    OFF = "off"
    RELEVANT = "relevant"
    STRICT = "strict"


MODES = tuple(m.value for m in Validation)
# measured (docs/architecture.md): the models cost ~90 us a resource, 3 ms of a 30-resource call
DEFAULT_VALIDATION = Validation.OFF
# nested single objects (dosageInstruction, then its doseAndRate) surface one level per round
MAX_REPAIR_ROUNDS = 4


class InvalidResource(ValueError):
    """A resource is not valid R4 even after the repairs (the message says why, PHI-free)."""


def _summarise(errors: list[Any]) -> str:
    parts = []
    for e in errors[:3]:
        loc = ".".join(str(p) for p in e.get("loc", ()))
        parts.append(f"{loc or '(resource)'}: {e.get('msg', 'invalid')}")
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def _model_class(rtype: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(rtype)


def r4(data: JSON) -> tuple[Any, JSON, str | None, list[str]]:
    """(model or None, the JSON after repairs, why it is invalid or None, the repairs made).

    An unknown element (R5 or a vendor's) is dropped and a single object where R4 wants a list is
    read as a one-item list; both are reported. `data` itself is never changed."""
    from pydantic import ValidationError

    cls = _model_class(str(data.get("resourceType")))
    repairs: list[str] = []
    copied = False
    for attempt in range(MAX_REPAIR_ROUNDS + 1):
        try:
            return cls.model_validate(data), data, None, repairs
        except ValidationError as exc:
            errors = exc.errors()
            extra = [e["loc"] for e in errors if e.get("type") == "extra_forbidden"]
            single = [e["loc"] for e in errors if e.get("type") == "list_type" and isinstance(e.get("input"), dict)]
            if attempt < MAX_REPAIR_ROUNDS and (extra or single) and len(extra) + len(single) == len(errors):
                if not copied:
                    data, copied = orjson.loads(orjson.dumps(data)), True
                if single:
                    wrap_in_list(data, single)
                    repairs.append("single object read as a list: " + ", ".join(".".join(map(str, loc)) for loc in single[:5]))
                if extra:
                    drop_paths(data, extra)
                    repairs.append("ignored unknown element(s): " + ", ".join(".".join(map(str, loc)) for loc in extra[:5]))
                continue
            return None, data, "not valid FHIR R4: " + _summarise(errors), repairs
        except (TypeError, ValueError) as exc:  # defensive: odd input the models choke on
            return None, data, f"not valid FHIR R4: {type(exc).__name__}", repairs
    return None, data, "not valid FHIR R4", repairs  # pragma: no cover - the loop always returns


def _repaired_r4(resource: JSON) -> tuple[Any, JSON, str | None, list[str]]:
    """`r4` after every element's repair (normalize.py): the resource as read in had only the
    elements the facts read mended."""
    cleaned, _ = normalize_resource(resource)
    if cleaned is None:
        return None, resource, "resource is empty", []
    return r4(cleaned)


def validator(resource: JSON, location: str) -> tuple[bool, list[ResourceIssue]]:
    """`VisitResources.validator` for `relevant`: usable or not, and the issue to report."""
    model, _, problem, repairs = _repaired_r4(resource)
    rtype, rid = resource.get("resourceType"), resource.get("id")
    rid = rid if isinstance(rid, str) else None
    if model is None:
        return False, [ResourceIssue(location, str(rtype), rid, problem or "not valid FHIR R4")]
    if repairs:
        return True, [ResourceIssue(location, str(rtype), rid, "; ".join(repairs[:5]), skipped=False)]
    return True, []


def as_valid_json(resource: JSON) -> JSON:
    """A fresh copy of the resource, checked valid R4 (repaired as above): what a suggestion edits
    and sends back. The EHR's own JSON, not the models' rendering of it (the two are equal for
    every resource of the samples)."""
    model, data, problem, _ = _repaired_r4(resource)
    if model is None:
        raise InvalidResource(problem or "not valid FHIR R4")
    result: JSON = orjson.loads(orjson.dumps(data))
    return result


def warm_up(types: frozenset[str]) -> None:
    """Import the model classes at start, so the first call after a start does not spend its FHIR
    time budget on imports (issue 11: measured up to half a second cold)."""
    for rtype in types:
        _model_class(rtype)
