"""FHIR R4 search for the in-memory test/demo server: which parameters each resource type has,
and whether a resource matches them.

One table (`SEARCH_PARAMETERS`) drives both the matching and the CapabilityStatement, so
`/metadata` never lists a parameter the server does not apply. Supported: reference
(`patient=pt1`, `patient=Patient/pt1`), token (`code=system|code`, `code=code`, `status=a,b`,
`_id`), date with the prefixes eq, ne, lt, gt, le, ge at the precision given; commas OR values,
a repeated parameter ANDs them; `_sort` on date and token parameters; `_count`.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# result parameters: handled by the server, never matched
RESULT_PARAMETERS = ("_count", "_sort", "_offset", "_format")


@dataclass(frozen=True)
class SearchParameter:
    name: str
    kind: str  # "reference" | "token" | "date"
    paths: tuple[str, ...]  # dotted element paths; lists are walked
    documentation: str = ""


def _ref(name: str, *paths: str) -> SearchParameter:
    return SearchParameter(name, "reference", paths)


def _token(name: str, *paths: str) -> SearchParameter:
    return SearchParameter(name, "token", paths)


def _date(name: str, *paths: str) -> SearchParameter:
    return SearchParameter(name, "date", paths)


_ID = _token("_id", "id")


def _params(*items: SearchParameter) -> dict[str, SearchParameter]:
    return {p.name: p for p in (_ID, *items)}


SEARCH_PARAMETERS: dict[str, dict[str, SearchParameter]] = {
    "Patient": _params(),
    "Practitioner": _params(),
    "PractitionerRole": _params(_ref("practitioner", "practitioner")),
    "Device": _params(_ref("patient", "patient"), _token("type", "type"), _token("status", "status")),
    "Procedure": _params(
        _ref("patient", "subject"), _ref("subject", "subject"), _ref("encounter", "encounter"),
        _date("date", "performedDateTime", "performedPeriod.start"), _token("code", "code"),
        _token("status", "status"),
    ),
    "Observation": _params(
        _ref("patient", "subject"), _ref("subject", "subject"), _ref("encounter", "encounter"),
        _date("date", "effectiveDateTime", "effectivePeriod.start", "issued"), _token("code", "code"),
        _token("status", "status"),
    ),
    "MedicationAdministration": _params(
        _ref("patient", "subject"), _ref("subject", "subject"), _ref("context", "context"),
        _date("effective-time", "effectiveDateTime", "effectivePeriod.start"),
        _token("code", "medicationCodeableConcept"), _token("status", "status"),
    ),
    "MedicationRequest": _params(
        _ref("patient", "subject"), _ref("subject", "subject"), _ref("encounter", "encounter"),
        _date("authoredon", "authoredOn"), _token("code", "medicationCodeableConcept"),
        _token("status", "status"), _token("intent", "intent"),
    ),
    "ServiceRequest": _params(
        _ref("patient", "subject"), _ref("subject", "subject"), _ref("encounter", "encounter"),
        _date("authored", "authoredOn"), _date("occurrence", "occurrenceDateTime", "occurrencePeriod.start"),
        _token("code", "code"), _token("status", "status"), _token("intent", "intent"),
    ),
    "ChargeItem": _params(
        _ref("patient", "subject"), _ref("subject", "subject"), _ref("context", "context"),
        _date("entered-date", "enteredDate"), _token("code", "code"),
    ),
    "Encounter": _params(
        _ref("patient", "subject"), _ref("subject", "subject"), _date("date", "period.start"),
        _token("status", "status"),
    ),
    "Coverage": _params(_ref("patient", "beneficiary"), _ref("beneficiary", "beneficiary"), _token("status", "status")),
    "Condition": _params(
        _ref("patient", "subject"), _ref("subject", "subject"), _ref("encounter", "encounter"),
        _date("recorded-date", "recordedDate"), _token("code", "code"),
    ),
    "Medication": _params(_token("code", "code")),
    "DeviceRequest": _params(_ref("patient", "subject"), _ref("subject", "subject"), _token("status", "status")),
}


class SearchError(ValueError):
    """A search the server cannot answer as asked (400 with this message)."""


def parameters_for(resource_type: str) -> dict[str, SearchParameter]:
    return SEARCH_PARAMETERS.get(resource_type, {"_id": _ID})


def unknown_parameters(resource_type: str, names: Iterable[str]) -> list[str]:
    known = parameters_for(resource_type)
    return [n for n in names if n not in known and n not in RESULT_PARAMETERS]


def _values(node: Any, path: str) -> list[Any]:
    items = [node]
    for part in path.split("."):
        nxt: list[Any] = []
        for item in items:
            value = item.get(part) if isinstance(item, dict) else None
            if isinstance(value, list):
                nxt.extend(value)
            elif value is not None:
                nxt.append(value)
        items = nxt
    return items


def _reference_matches(value: Any, wanted: str) -> bool:
    reference = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(reference, str):
        return False
    if "/" in wanted:
        return reference == wanted or reference.endswith("/" + wanted)
    return reference.rsplit("/", 1)[-1] == wanted


def _token_matches(value: Any, wanted: str) -> bool:
    if isinstance(value, str):  # code, id, status
        return value == wanted.split("|")[-1] if "|" in wanted else value == wanted
    codings: list[Any] = []
    if isinstance(value, dict):
        listed = value.get("coding")
        codings = listed if isinstance(listed, list) else [value]
    system, bar, code = wanted.rpartition("|")
    for coding in codings:
        if not isinstance(coding, dict):
            continue
        if not bar:
            if coding.get("code") == wanted:
                return True
        elif (not system or coding.get("system") == system) and (not code or coding.get("code") == code):
            return True
    return False


_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge")


def _range(text: str) -> tuple[dt.datetime, dt.datetime]:
    """The instant range a FHIR date/dateTime covers at its own precision (naive dates as UTC)."""
    try:
        if len(text) == 4:
            start = dt.datetime(int(text), 1, 1, tzinfo=dt.UTC)
            return start, start.replace(year=start.year + 1)
        if len(text) == 7:
            year, month = int(text[:4]), int(text[5:7])
            start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
            end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
            return start, end
        if len(text) == 10:
            start = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
            return start, start + dt.timedelta(days=1)
        instant = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SearchError(f"not a FHIR date or dateTime: {text!r}") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)
    return instant, instant + dt.timedelta(seconds=1)


def _date_matches(value: Any, wanted: str) -> bool:
    if not isinstance(value, str):
        return False
    prefix = wanted[:2] if wanted[:2] in _PREFIXES else "eq"
    target = wanted[2:] if wanted[:2] in _PREFIXES else wanted
    lo, hi = _range(target)
    try:
        v_lo, v_hi = _range(value)
    except SearchError:
        return False
    if prefix == "eq":
        return lo <= v_lo and v_hi <= hi
    if prefix == "ne":
        return not (lo <= v_lo and v_hi <= hi)
    if prefix == "lt":
        return v_lo < lo
    if prefix == "gt":
        return v_hi > hi
    if prefix == "le":
        return v_lo < hi
    return v_hi > lo  # ge


def _one_matches(resource: dict[str, Any], param: SearchParameter, wanted: str) -> bool:
    values = [v for path in param.paths for v in _values(resource, path)]
    if param.kind == "reference":
        return any(_reference_matches(v, wanted) for v in values)
    if param.kind == "token":
        return any(_token_matches(v, wanted) for v in values)
    return any(_date_matches(v, wanted) for v in values)


def matches(resource: dict[str, Any], criteria: Mapping[str, list[str]]) -> bool:
    """True when every parameter (AND) has a matching value for one of its comma-separated values (OR)."""
    known = parameters_for(str(resource.get("resourceType")))
    for name, occurrences in criteria.items():
        param = known.get(name)
        if param is None:
            continue  # unknown parameters are ignored (lenient handling)
        for occurrence in occurrences:
            if not any(_one_matches(resource, param, v) for v in occurrence.split(",") if v):
                return False
    return True


def check_dates(resource_type: str, criteria: Mapping[str, list[str]]) -> None:
    """400 for a date parameter whose value is not a date, before any resource is looked at."""
    known = parameters_for(resource_type)
    for name, occurrences in criteria.items():
        param = known.get(name)
        if param is not None and param.kind == "date":
            for occurrence in occurrences:
                for v in occurrence.split(","):
                    _range(v[2:] if v[:2] in _PREFIXES else v)


def sort_key(resource_type: str, sort: str) -> list[tuple[str, bool]]:
    """[(parameter, descending)] for `_sort=-date,code`; unknown names are a SearchError."""
    known = parameters_for(resource_type)
    keys = []
    for part in (p.strip() for p in sort.split(",") if p.strip()):
        name = part.lstrip("-")
        if name not in known or known[name].kind == "reference":
            raise SearchError(f"cannot sort {resource_type} by {name!r}")
        keys.append((name, part.startswith("-")))
    return keys


def sorted_resources(resources: list[dict[str, Any]], resource_type: str, sort: str) -> list[dict[str, Any]]:
    out = list(resources)
    known = parameters_for(resource_type)
    for name, descending in reversed(sort_key(resource_type, sort)):
        param = known[name]

        def key(r: dict[str, Any], param: SearchParameter = param) -> tuple[int, str]:
            found = [_sortable(param, v) for path in param.paths for v in _values(r, path)]
            values = [v for v in found if v is not None]
            return (1, values[0]) if values else (0, "")

        # resources without a value sort last either way
        present = [r for r in out if key(r)[0]]
        absent = [r for r in out if not key(r)[0]]
        out = sorted(present, key=key, reverse=descending) + absent
    return out


def _sortable(param: SearchParameter, value: Any) -> str | None:
    """Dates sort on their UTC start (offsets differ between resources); tokens on the code."""
    if param.kind == "date":
        try:
            return _range(value)[0].isoformat() if isinstance(value, str) else None
        except SearchError:
            return None
    if isinstance(value, str):
        return value
    codings = value.get("coding") if isinstance(value, dict) else None
    codes = [c.get("code") for c in codings or [] if isinstance(c, dict) and isinstance(c.get("code"), str)]
    return codes[0] if codes else None
