"""Typed reads of FHIR R4 JSON as orjson decodes it (dicts, lists, str, int, float, bool).

Every accessor checks the JSON type it expects and answers None (or an empty list) for anything
else; none raises. Whether a wrong type is a data-quality problem is decided once, when the
resource is read in (`shapes.py`), not here. Primitives are read as leniently as the R4 models
of fhir.resources read them (a number sent as a numeric string, `"true"` for true), so a visit
gives the same facts whether or not it was also validated with those models.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

JSON = dict[str, Any]
Number = int | float | Decimal

# FHIR R4 decimal as text (also what the R4 models accept as a string)
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"\s*[+-]?[0-9]+(\.0*)?\s*")
_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})


def obj(value: Any) -> JSON | None:
    return value if type(value) is dict else None


def items(value: Any) -> list[JSON]:
    """The objects of a list element; a single object where R4 wants a list counts as a one-item
    list (its meaning is unambiguous); anything else in the list is left out."""
    t = type(value)
    if t is list:
        return [v for v in value if type(v) is dict]
    if t is dict:
        return [value]
    return []


def text(value: Any) -> str | None:
    """A non-empty string, else None."""
    return value if type(value) is str and value else None


def child(node: Any, key: str) -> JSON | None:
    """node[key] when node is an object and that element is an object."""
    if type(node) is not dict:
        return None
    value = node.get(key)
    return value if type(value) is dict else None


def codings(concept: Any) -> list[JSON]:
    """The Codings of a CodeableConcept (or the Coding itself when given one)."""
    if type(concept) is not dict:
        return []
    found = concept.get("coding")
    if found is None:
        return [concept] if type(concept.get("code")) is str else []
    return items(found)


def reference(ref: Any) -> str | None:
    """The `reference` text of a Reference."""
    if type(ref) is not dict:
        return None
    value = ref.get("reference")
    return value if type(value) is str and value else None


def reference_id(ref: Any) -> str | None:
    """The id a Reference points at (its last path segment), or None without a `Type/id` reference."""
    value = reference(ref)
    if value is None or "/" not in value:
        return None
    return value.rstrip("/").split("/")[-1]


def resource_type(resource: Any) -> str | None:
    if type(resource) is not dict:
        return None
    value = resource.get("resourceType")
    return value if type(value) is str else None


def resource_id(resource: Any) -> str | None:
    if type(resource) is not dict:
        return None
    value = resource.get("id")
    return value if type(value) is str and value else None


def ref_of(resource: JSON) -> str:
    """`Type/id` of a resource (just the type when it has no id): how evidence names it."""
    rtype = resource_type(resource) or "Resource"
    rid = resource_id(resource)
    return f"{rtype}/{rid}" if rid else rtype


def day(value: Any) -> dt.date | None:
    """The calendar day of a FHIR date, dateTime or instant (as written, whatever its time zone)."""
    if type(value) is not str or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def first_day(node: Any, *keys: str) -> dt.date | None:
    """The day of the first of these elements that is set (a Period counts by its start):
    e.g. ``first_day(procedure, "performedDateTime", "performedPeriod")``."""
    if type(node) is not dict:
        return None
    for key in keys:
        value = node.get(key)
        if type(value) is dict:
            value = value.get("start")
        if value:
            return day(value)
    return None


def number(value: Any) -> Number | None:
    """A FHIR decimal: a JSON number (not true/false) or a decimal written as a string."""
    t = type(value)
    if t is int:
        return value
    if t is float:
        return value if math.isfinite(value) else None
    if t is str and _DECIMAL.fullmatch(value):
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
            return None
    return None


def integer(value: Any) -> int | None:
    """A FHIR integer (also 5.0 or "5", as the R4 models accept them)."""
    t = type(value)
    if t is int:
        return value
    if t is bool:
        return int(value)
    if t is float and value.is_integer():
        return int(value)
    if t is str and _INTEGER.fullmatch(value):
        return int(Decimal(value.strip()))
    return None


def boolean(value: Any) -> bool | None:
    """A FHIR boolean (also "true"/"false", 1/0 and the other spellings the R4 models accept)."""
    t = type(value)
    if t is bool:
        return value
    if (t is int or t is float) and value in (0, 1):
        return bool(value)
    if t is str:
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    return None


class Quantity(NamedTuple):
    value: Number | None
    unit: str | None
    code: str | None

    @property
    def unit_code(self) -> str:
        """The UCUM code, else the human unit, else ""."""
        return self.code or self.unit or ""


def quantity(value: Any) -> Quantity | None:
    """A Quantity (or Age, Duration, SimpleQuantity): its number, unit and unit code."""
    if type(value) is not dict:
        return None
    return Quantity(number(value.get("value")), text(value.get("unit")), text(value.get("code")))


def format_number(value: Number) -> str:
    """A decimal as the record wrote it, without float noise or trailing zeros: 2.0 -> "2"."""
    if type(value) is int:
        return str(value)
    dec = value if isinstance(value, Decimal) else Decimal(repr(value))
    return format(dec.normalize(), "f")


# value[x] of an Observation or one of its components, in the order the reader looks
VALUE_KEYS = ("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger",
              "valueDateTime", "valueRatio", "valuePeriod")


class Value(NamedTuple):
    """An Observation's value[x]: which one (`valueQuantity` ...) and the JSON sent."""

    key: str
    raw: Any

    @property
    def stated(self) -> bool:
        """Something is stated: not false, not 0, not empty."""
        if self.key == "valueBoolean":
            return boolean(self.raw) is True
        if self.key == "valueInteger":
            return integer(self.raw) not in (None, 0)
        return self.raw != ""

    @property
    def flag(self) -> bool | None:
        """The value as true/false, when it is a boolean."""
        return boolean(self.raw) if self.key == "valueBoolean" else None


def value_of(node: Any) -> Value | None:
    if type(node) is not dict:
        return None
    for key in VALUE_KEYS:
        raw = node.get(key)
        if raw is not None:
            return Value(key, raw)
    return None


def plain(value: Value | None) -> str:
    """A value as short text for evidence and parameter changes: "2 mg/mL", "2027-01-15"."""
    if value is None:
        return "?"
    key, raw = value
    if key == "valueQuantity":
        return plain_quantity(quantity(raw))
    if key == "valueCodeableConcept":
        first = next(iter(codings(raw)), None) or {}
        return text(first.get("display")) or text(first.get("code")) or text(obj(raw) and raw.get("text")) or "?"
    if key == "valueBoolean":
        flag = boolean(raw)
        return "?" if flag is None else str(flag)
    if key == "valueInteger":
        whole = integer(raw)
        return "?" if whole is None else str(whole)
    if key == "valueDateTime":
        return raw[:10] if type(raw) is str else "?"
    if key == "valueRatio":
        ratio = obj(raw) or {}
        return f"{plain_quantity(quantity(ratio.get('numerator')))}/{plain_quantity(quantity(ratio.get('denominator')))}"
    if key == "valuePeriod":
        period = obj(raw) or {}
        start, end = (period.get(k) for k in ("start", "end"))
        return f"{start[:10] if type(start) is str else '?'} to {end[:10] if type(end) is str else '?'}"
    return raw if type(raw) is str else str(raw)


def plain_quantity(q: Quantity | None) -> str:
    if q is None:
        return "?"
    number_text = "?" if q.value is None else format_number(q.value)
    return f"{number_text} {q.unit or q.code or ''}".strip()
