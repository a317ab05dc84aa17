"""Repairs for real-world FHIR JSON that strict R4 models reject.

Each repair is recorded so the visit's data-quality finding can say what was changed.
Nothing here guesses clinical meaning: only syntax is mended. `convert` (whole-resource
conversions) always runs; the walk of `clean` over every element runs before R4 validation
(`strict`, `relevant`, and a resource a suggestion sends back); without validation the element
type check mends the elements the facts read, one by one, with the same single-value repairs
(`mend_text`, `mend_datetime`).
"""
from __future__ import annotations

import re
from typing import Any

_LOCAL_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2}(\.\d+)?)?$")
_ID_BAD = re.compile(r"[^A-Za-z0-9\-.]")
_TRIMMED_KEYS = {"code", "system", "status", "intent", "unit", "id", "reference", "version", "use"}
_DATETIME_KEYS = re.compile(
    r"(DateTime|Instant|^date$|^issued$|^authoredOn$|^recorded$|^start$|^end$|^occurrenceDateTime$|^lastUpdated$|^effectiveDateTime$|^enteredDate$)"
)


def _fix_datetime(value: str) -> str | None:
    m = _LOCAL_DATETIME.match(value)
    if not m:
        return None
    seconds = m.group(3) or ":00"
    return f"{m.group(1)}T{m.group(2)}{seconds}Z"


def _sanitize_id(value: str) -> str:
    return _ID_BAD.sub("-", value)[:64]


def mend_id(value: str) -> str:
    """An id with stray spaces trimmed and characters an id does not allow replaced."""
    value = value.strip()
    return _sanitize_id(value) if _ID_BAD.search(value) else value


def mend_reference(value: str) -> str:
    """A relative reference whose id has characters an id does not allow (`Patient/p 1`)."""
    value = value.strip()
    if "/" in value and not value.startswith(("http://", "https://", "#", "urn:")):
        head, _, tail = value.rpartition("/")
        if _ID_BAD.search(tail):
            return f"{head}/{_sanitize_id(tail)}"
    return value


def mend_datetime(value: str, key: str) -> str | None:
    """A date-time without time zone read as UTC (in the elements `_clean` mends), else None."""
    return _fix_datetime(value) if _DATETIME_KEYS.search(key) else None


def _clean(node: Any, key: str | None, repairs: list[str], path: str) -> Any:
    """Return a repaired copy; `None` means "drop this element" (empty per FHIR)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "fhir_comments":
                continue
            cleaned = _clean(v, k, repairs, f"{path}.{k}" if path else k)
            if cleaned is not None:
                out[k] = cleaned
        return out or None
    if isinstance(node, list):
        items = [c for c in (_clean(v, key, repairs, f"{path}[{i}]") for i, v in enumerate(node)) if c is not None]
        if len(items) != len(node):
            repairs.append(f"removed empty items from {path}")
        return items or None
    if isinstance(node, str):
        if node == "":
            repairs.append(f"removed empty value {path}")
            return None
        value = node
        if key in _TRIMMED_KEYS and value != value.strip():
            value = value.strip()
            repairs.append(f"trimmed spaces in {path}")
        if key and _DATETIME_KEYS.search(key):
            fixed = _fix_datetime(value)
            if fixed:
                repairs.append(f"{path}: date-time without time zone read as UTC")
                value = fixed
        if key == "id" and _ID_BAD.search(value):
            repairs.append(f"{path}: invalid characters in id replaced")
            value = _sanitize_id(value)
        if key == "reference" and mend_reference(value) != value:
            repairs.append(f"{path}: invalid characters in referenced id replaced")
            value = mend_reference(value)
        return value
    return node


def _medication_order_to_request(d: dict[str, Any], repairs: list[str]) -> dict[str, Any]:
    """DSTU2 MedicationOrder (still sent by the public sandbox) -> R4 MedicationRequest."""
    repairs.append("DSTU2 MedicationOrder read as R4 MedicationRequest")
    out: dict[str, Any] = {"resourceType": "MedicationRequest", "intent": "order"}
    status_map = {"active": "active", "on-hold": "on-hold", "completed": "completed",
                  "entered-in-error": "entered-in-error", "stopped": "stopped", "draft": "draft"}
    status = d.get("status")
    out["status"] = status_map.get(status, "draft") if isinstance(status, str) else "draft"
    for key in ("id", "meta", "identifier", "medicationCodeableConcept", "medicationReference", "note", "encounter"):
        if key in d:
            out[key] = d[key]
    if "patient" in d:
        out["subject"] = d["patient"]
    if "dateWritten" in d:
        out["authoredOn"] = d["dateWritten"]
    if "prescriber" in d:
        out["requester"] = d["prescriber"]
    dosages = []
    sent = d.get("dosageInstruction") or []
    if not (isinstance(sent, list) and all(isinstance(dose, dict) for dose in sent)):
        out["dosageInstruction"] = sent  # not convertible: the R4 model rejects it, and says so
        return out
    for dose in sent:
        r4: dict[str, Any] = {}
        for key in ("text", "timing", "route", "site", "method"):
            if key in dose:
                r4[key] = dose[key]
        amount = {k: dose[k] for k in ("doseQuantity", "doseRange", "rateRatio", "rateRange") if k in dose}
        if "doseQuantity" in amount or "doseRange" in amount or "rateRatio" in amount or "rateRange" in amount:
            r4["doseAndRate"] = [amount]
        if r4:
            dosages.append(r4)
    if dosages:
        out["dosageInstruction"] = dosages
    return out


_REQUEST_TYPES = {"MedicationRequest", "ServiceRequest", "DeviceRequest"}


def convert(raw: dict[str, Any], draft_order: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Whole-resource conversions (a new top-level object when one applies, else `raw` itself).

    A draft order without `intent` (the public sandbox builds its MedicationRequest that way) is an
    order by where it sits: the EHR is asking to sign it.
    """
    repairs: list[str] = []
    data = raw
    if data.get("resourceType") == "MedicationOrder":
        data = _medication_order_to_request(data, repairs)
    if draft_order and data.get("resourceType") in _REQUEST_TYPES and not data.get("intent"):
        data = {**data, "intent": "order"}
        repairs.append("draft order without intent read as intent 'order'")
    if (draft_order and data.get("resourceType") == "MedicationRequest"
            and "medicationCodeableConcept" not in data and "medicationReference" not in data):
        # a drug order still being filled in (the sandbox signs one when no drug is chosen): the
        # drug is unknown, and said so; its date and route still count
        data = {**data, "medicationCodeableConcept": {"text": "no medication named in the draft order"}}
        repairs.append("draft MedicationRequest without a medication read as one for an unnamed drug")
    if data.get("resourceType") == "Bundle" and not data.get("type"):
        data = {**data, "type": "collection"}
        repairs.append("Bundle without type read as a collection")
    return data, repairs


def normalize_resource(raw: dict[str, Any], draft_order: bool = False) -> tuple[dict[str, Any] | None, list[str]]:
    """`convert`, then every element repaired (a copy): the resource (None if nothing is left) and
    the repairs made."""
    data, repairs = convert(raw, draft_order)
    cleaned = _clean(data, None, repairs, "")
    return cleaned, repairs


def _parent(data: dict[str, Any], loc: tuple[Any, ...]) -> Any:
    """The container holding the element at `loc` (a validator's error location), or None."""
    node: Any = data
    for part in loc[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def wrap_in_list(data: dict[str, Any], locs: list[tuple[Any, ...]]) -> None:
    """An object where R4 wants a list becomes a one-item list (the sandbox sends its
    MedicationRequest.category that way); the meaning is unambiguous. In place."""
    for loc in locs:
        node = _parent(data, loc)
        if isinstance(node, dict) and isinstance(node.get(loc[-1]), dict):
            node[loc[-1]] = [node[loc[-1]]]


def drop_paths(data: dict[str, Any], locs: list[tuple[Any, ...]]) -> None:
    """Remove elements the model does not know (e.g. R5 or vendor fields), in place."""
    for loc in sorted(locs, key=len, reverse=True):
        node = _parent(data, loc)
        if isinstance(node, dict):
            node.pop(loc[-1], None)
