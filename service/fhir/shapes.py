"""The JSON types of the FHIR elements pumpcds reads, per resource type, checked on every resource
read in, whatever `fhir_validation` says.

The visit facts are read from the JSON itself (service/coding/readers/). A wrong type in an element
they read (a quantity's value sent as "132/84", a status sent as a number, a date that is not a
date) must not be read as absent, which would be the cheaper answer: the resource is skipped and
reported, exactly as when R4 validation rejects it. Required elements of R4 that say what a resource
is (its status, code, subject) are checked for presence the same way. Elements nobody reads are
not checked here; `fhir_validation: relevant | strict` adds full R4 validation (validate.py).

Primitives are judged as the R4 models of fhir.resources judge them (jsonview.py reads them the
same way), so a resource valid R4 always passes, and every sample gives the same facts in every
mode (tests/fhir/test_validation_modes.py). tests/coding/readers/test_shapes_cover_reads.py proves
that every element a reader touches is listed here.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import normalize
from .jsonview import boolean, integer, number

Loc = tuple[str | int, ...]

_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)
_INSTANT = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
)
_CODE = re.compile(r"[^\s]+(\s[^\s]+)*")
_URI = re.compile(r"\S+")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_REF = re.compile(r"[A-Za-z0-9\-./]+")


def _calendar_day(value: str) -> bool:
    """A day the calendar has (the pattern admits 2026-02-30); only days past the 28th can be wrong."""
    if len(value) < 10 or value[8:10] <= "28":
        return True
    try:
        dt.date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


DELETE = object()  # a mend that drops the element: an empty value is no value (FHIR)
# a mend: the value to read instead (or DELETE) and the repair, worded with {path}; None: it cannot be mended
Mend = tuple[Any, str | None] | None


def _only_empty(value: Any, key: str = "") -> Mend:
    return (DELETE, "removed empty value {path}") if value == "" else None


def _trimming(test: Callable[[Any], bool]) -> Callable[[Any, str], Mend]:
    def mend(value: Any, key: str) -> Mend:
        if type(value) is not str:
            return None
        trimmed = value.strip()
        if not trimmed:
            return DELETE, "removed empty value {path}"
        return (trimmed, "trimmed spaces in {path}") if trimmed != value and test(trimmed) else None
    return mend


def _mending_chars(fix: Callable[[str], str], what: str) -> Callable[[Any, str], Mend]:
    """A mend that trims an id or reference and replaces characters R4 does not allow in it."""
    def mend(value: Any, key: str) -> Mend:
        if type(value) is not str or not value.strip():
            return _only_empty(value)
        fixed = fix(value)
        said = ["trimmed spaces in {path}"] if value.strip() != value else []
        if fixed != value.strip():
            said.append("{path}: invalid characters in " + what + " replaced")
        return fixed, "; ".join(said) or None  # nothing said: fine as it is (an absolute or urn: reference)
    return mend


_mend_id = _mending_chars(normalize.mend_id, "id")
_mend_reference = _mending_chars(normalize.mend_reference, "referenced id")


def _mend_datetime(test: Callable[[Any], bool]) -> Callable[[Any, str], Mend]:
    def mend(value: Any, key: str) -> Mend:
        if type(value) is not str or not value:
            return _only_empty(value)
        fixed = normalize.mend_datetime(value, key)
        return (fixed, "{path}: date-time without time zone read as UTC") if fixed and test(fixed) else None
    return mend


@dataclass(frozen=True)
class Primitive:
    """A FHIR primitive type: its name in messages, the test a JSON value must pass, and how a
    value that fails may still be read (the repairs of normalize.py, for this one value)."""

    name: str
    test: Callable[[Any], bool]
    mend: Callable[[Any, str], Mend] = _only_empty  # (value, its element name)
    # a JSON Schema that accepts only values `test` passes (shape_schema.py's fast yes); without
    # one, it accepts nothing, so the element is always walked
    schema: dict[str, Any] = field(default_factory=lambda: {"not": {}})


def _no_space(v: str) -> bool:
    """No white space at all (fast: most codes and URIs), which both patterns below then accept."""
    return v.isprintable() and " " not in v


def _is_code(v: Any) -> bool:
    return type(v) is str and v != "" and (_no_space(v) or _CODE.fullmatch(v) is not None)


def _is_uri(v: Any) -> bool:
    return type(v) is str and v != "" and (_no_space(v) or _URI.fullmatch(v) is not None)


def _is_id(v: Any) -> bool:
    return type(v) is str and _ID.fullmatch(v) is not None


def _is_datetime(v: Any) -> bool:
    return type(v) is str and _DATETIME.fullmatch(v) is not None and _calendar_day(v)


def _is_instant(v: Any) -> bool:
    return type(v) is str and _INSTANT.fullmatch(v) is not None and _calendar_day(v)


def _is_trimmed(v: Any) -> bool:
    return type(v) is str and v != "" and not v[0].isspace() and not v[-1].isspace()


# JSON Schema patterns (Rust regex syntax) for the tests above. WS: exactly the characters
# str.isspace() and Python's \s accept (tests/fhir/test_shape_schema.py checks the list).
WS = r"\u{9}-\u{d}\u{1c}-\u{20}\u{85}\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}"
_S, _NS = f"[{WS}]", f"[^{WS}]"
_YEAR = "([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
# month and day as the calendar has them (29 February is left to the walk, which knows leap years)
_MONTH_DAYS = ("((0[13578]|1[02])(-(0[1-9]|[12][0-9]|3[01]){t})?"
               "|(0[469]|11)(-(0[1-9]|[12][0-9]|30){t})?"
               "|02(-(0[1-9]|1[0-9]|2[0-8]){t})?)")
_DATETIME_SCHEMA = f"^{_YEAR}(-{_MONTH_DAYS.format(t=f'({_TIME})?')})?$"
_INSTANT_SCHEMA = f"^{_YEAR}-" + _MONTH_DAYS.replace(")?", ")").format(t=_TIME) + "$"


def _pattern(regex: str) -> dict[str, Any]:
    return {"type": "string", "pattern": regex}


STRING = Primitive("a string", lambda v: type(v) is str and v != "", schema={"type": "string", "minLength": 1})
TRIMMED = Primitive("a string", _is_trimmed, _trimming(_is_trimmed),  # a unit: trimmed, as normalize does
                    _pattern(f"^{_NS}([\\s\\S]*{_NS})?$"))
CODE = Primitive("a code", _is_code, _trimming(_is_code), _pattern(f"^{_NS}+({_S}{_NS}+)*$"))
URI = Primitive("a URI", _is_uri, _trimming(_is_uri), _pattern(f"^{_NS}+$"))
ID = Primitive("an id", _is_id, _mend_id, _pattern(r"^[A-Za-z0-9\-.]{1,64}$"))
# absolute, urn: and local (#) references fail the test but are read as they are (nothing to mend)
REF = Primitive("a reference", lambda v: type(v) is str and _REF.fullmatch(v) is not None, _mend_reference,
                _pattern(f"^([A-Za-z0-9\\-./]+|(https?://|urn:|#){_NS}*)$"))
DATETIME = Primitive("a date or date-time", _is_datetime, _mend_datetime(_is_datetime), _pattern(_DATETIME_SCHEMA))
INSTANT = Primitive("an instant", _is_instant, _mend_datetime(_is_instant), _pattern(_INSTANT_SCHEMA))
DECIMAL = Primitive("a decimal number", lambda v: number(v) is not None, schema={"type": "number"})
INTEGER = Primitive("an integer", lambda v: integer(v) is not None, schema={"type": "integer"})
BOOLEAN = Primitive("true or false", lambda v: boolean(v) is not None, schema={"type": "boolean"})


@dataclass
class Obj:
    """A JSON object: the elements read (and their shapes), the R4-required ones, and choice
    groups (value[x]: at most one of them; `one_required`: exactly one)."""

    fields: dict[str, Spec] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    choices: tuple[tuple[str, ...], ...] = ()
    one_required: tuple[str, ...] = ()


@dataclass(frozen=True)
class Many:
    """A JSON array of `item`; a single object where the array belongs is read as a one-item array
    (a repair, reported), anything else is wrong."""

    item: Obj


Spec = Primitive | Obj | Many


@dataclass
class Checked:
    problems: list[str] = field(default_factory=list)
    wraps: list[Loc] = field(default_factory=list)  # single objects to read as one-item lists
    mends: list[tuple[Loc, Any]] = field(default_factory=list)  # values to read instead (or DELETE)
    repairs: list[str] = field(default_factory=list)


# where an element is, as a chain (parent, key): cheaper to build than a path, which only a problem needs
Chain = tuple[Any, str | int] | None


def _path(chain: Chain) -> Loc:
    parts: list[str | int] = []
    while chain is not None:
        chain, part = chain
        parts.append(part)
    return tuple(reversed(parts))


def _name(chain: Chain) -> str:
    out = ""
    for part in _path(chain):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(resource)"


def _bad_primitive(value: Any, spec: Primitive, chain: tuple[Any, str], out: Checked) -> None:
    mended = spec.mend(value, chain[1])
    if mended is None:
        out.problems.append(f"{_name(chain)}: not {spec.name}")
        return
    fixed, said = mended
    if said:
        out.mends.append((_path(chain), fixed))
        out.repairs.append(said.format(path=_name(chain)))


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == {} or value == []


def _check_obj(node: dict[str, Any], shape: Obj, chain: Chain, out: Checked) -> None:
    """Walks the object's own elements (fewer than a shape lists), and no deeper than the shape."""
    fields = shape.fields
    for key, value in node.items():
        spec = fields.get(key)
        if spec is None or value is None:
            continue
        kind = type(spec)
        if kind is Primitive:
            if not (type(value) is str and value != "" if spec is STRING else spec.test(value)):  # type: ignore[union-attr]
                _bad_primitive(value, spec, (chain, key), out)  # type: ignore[arg-type]
        elif kind is Obj:
            if type(value) is dict:
                _check_obj(value, spec, (chain, key), out)  # type: ignore[arg-type]
            else:
                out.problems.append(f"{_name((chain, key))}: not a JSON object")
        elif type(value) is list:
            item = spec.item  # type: ignore[union-attr]
            here = (chain, key)
            for i, element in enumerate(value):
                if type(element) is dict:
                    _check_obj(element, item, (here, i), out)
                else:
                    out.problems.append(f"{_name((here, i))}: not a JSON object")
        elif type(value) is dict:
            out.wraps.append(_path((chain, key)))
            out.repairs.append(f"single object read as a list: {_name((chain, key))}")
            _check_obj(value, spec.item, ((chain, key), 0), out)  # type: ignore[union-attr]
        else:
            out.problems.append(f"{_name((chain, key))}: not a list")
    for key in shape.required:
        if not node.get(key):  # missing, null or empty (a required element is never a number or boolean)
            out.problems.append(f"{_name((chain, key))}: missing (required)")
    for group in shape.choices:
        present = [k for k in group if k in node]
        if len(present) > 1:
            present = [k for k in present if not _empty(node[k])]
            if len(present) > 1:
                out.problems.append(f"{_name(chain)}: more than one of {', '.join(present)}")
    if shape.one_required and not any(node.get(k) for k in shape.one_required):
        choice = os.path.commonprefix(list(shape.one_required)) + "[x]"
        out.problems.append(f"{_name((chain, choice))}: missing (required)")


def check(resource: dict[str, Any]) -> Checked:
    """Problems with the elements pumpcds reads (none: it can be read), the single objects to read
    as lists, the values to read mended, and the repairs in words."""
    out = Checked()
    shape = SHAPES.get(resource.get("resourceType"))  # type: ignore[arg-type]
    if shape is not None:
        _check_obj(resource, shape, None, out)
    return out


def mended(resource: dict[str, Any], checked: Checked) -> dict[str, Any]:
    """A copy of the resource as `checked` says to read it (the caller's JSON is never changed)."""
    data: dict[str, Any] = orjson.loads(orjson.dumps(resource))
    normalize.wrap_in_list(data, checked.wraps)
    for loc, value in checked.mends:
        parent: Any = data
        for part in loc[:-1]:
            parent = parent[part]
        if value is DELETE:
            del parent[loc[-1]]
        else:
            parent[loc[-1]] = value
    return data


# -- data types ----------------------------------------------------------------------------------
EXTENSION = Obj(required=("url",))
CODING = Obj({"system": URI, "code": CODE, "display": STRING, "extension": Many(EXTENSION)})
EXTENSION.fields.update({"url": URI, "valueCode": CODE, "valueCoding": CODING})
CONCEPT = Obj({"coding": Many(CODING), "text": STRING})
REFERENCE = Obj({"reference": REF, "display": STRING})
QUANTITY = Obj({"value": DECIMAL, "unit": TRIMMED, "code": CODE, "system": URI})
RATIO = Obj({"numerator": QUANTITY, "denominator": QUANTITY})
PERIOD = Obj({"start": DATETIME, "end": DATETIME})
IDENTIFIER = Obj({"system": URI, "value": STRING})

VALUE_X = ("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger", "valueRange",
           "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod")
VALUES: dict[str, Spec] = {
    "valueQuantity": QUANTITY, "valueCodeableConcept": CONCEPT, "valueString": STRING, "valueBoolean": BOOLEAN,
    "valueInteger": INTEGER, "valueDateTime": DATETIME, "valueRatio": RATIO, "valuePeriod": PERIOD,
}
COMMON: dict[str, Spec] = {"id": ID, "extension": Many(EXTENSION)}

# -- resources: the elements service/coding/readers/ read ------------------------------------------
SHAPES: dict[str, Obj] = {
    "Procedure": Obj({
        **COMMON, "status": CODE, "code": CONCEPT, "subject": REFERENCE, "encounter": REFERENCE,
        "performedDateTime": DATETIME, "performedPeriod": PERIOD, "bodySite": Many(CONCEPT),
        "focalDevice": Many(Obj({"manipulated": REFERENCE}, required=("manipulated",))),
        "performer": Many(Obj({"actor": REFERENCE, "function": CONCEPT, "onBehalfOf": REFERENCE}, required=("actor",))),
        "reasonCode": Many(CONCEPT), "reasonReference": Many(REFERENCE),
    }, required=("status", "subject"),
        choices=(("performedDateTime", "performedPeriod", "performedString", "performedAge", "performedRange"),)),
    "Observation": Obj({
        **COMMON, "status": CODE, "code": CONCEPT, "encounter": REFERENCE, "effectiveDateTime": DATETIME,
        "effectivePeriod": PERIOD, "issued": INSTANT, **VALUES, "device": REFERENCE,
        "component": Many(Obj({"code": CONCEPT, **VALUES}, required=("code",), choices=(VALUE_X,))),
    }, required=("status", "code"),
        choices=(("effectiveDateTime", "effectivePeriod", "effectiveTiming", "effectiveInstant"), VALUE_X)),
    "MedicationAdministration": Obj({
        **COMMON, "status": CODE, "subject": REFERENCE, "context": REFERENCE, "effectiveDateTime": DATETIME,
        "effectivePeriod": PERIOD, "device": Many(REFERENCE),
        "dosage": Obj({"route": CONCEPT, "dose": QUANTITY}),
        "performer": Many(Obj({"actor": REFERENCE}, required=("actor",))),
        "medicationCodeableConcept": CONCEPT, "medicationReference": REFERENCE,
    }, required=("status", "subject"),
        choices=(("effectiveDateTime", "effectivePeriod"), ("medicationCodeableConcept", "medicationReference")),
        one_required=("medicationCodeableConcept", "medicationReference")),
    "MedicationRequest": Obj({
        **COMMON, "status": CODE, "intent": CODE, "subject": REFERENCE, "encounter": REFERENCE,
        "authoredOn": DATETIME, "medicationCodeableConcept": CONCEPT, "medicationReference": REFERENCE,
        "dosageInstruction": Many(Obj({"route": CONCEPT,
                                       "doseAndRate": Many(Obj({"doseQuantity": QUANTITY}))})),
        "dispenseRequest": Obj({"quantity": QUANTITY}), "reasonCode": Many(CONCEPT),
    }, required=("status", "intent", "subject"),
        choices=(("medicationCodeableConcept", "medicationReference"),),
        one_required=("medicationCodeableConcept", "medicationReference")),
    "Medication": Obj({
        **COMMON, "code": CONCEPT,
        "ingredient": Many(Obj({"strength": RATIO})),
    }),
    "ServiceRequest": Obj({
        **COMMON, "status": CODE, "intent": CODE, "subject": REFERENCE, "encounter": REFERENCE,
        "occurrenceDateTime": DATETIME, "occurrencePeriod": PERIOD, "authoredOn": DATETIME, "code": CONCEPT,
        "orderDetail": Many(CONCEPT), "quantityQuantity": QUANTITY, "reasonCode": Many(CONCEPT),
        "performer": Many(REFERENCE),
    }, required=("status", "intent", "subject"),
        choices=(("occurrenceDateTime", "occurrencePeriod", "occurrenceTiming"),)),
    "DeviceRequest": Obj({
        **COMMON, "status": CODE, "intent": CODE, "subject": REFERENCE, "occurrenceDateTime": DATETIME,
        "occurrencePeriod": PERIOD, "authoredOn": DATETIME,
    }, required=("intent", "subject"), one_required=("codeReference", "codeCodeableConcept"),
        choices=(("occurrenceDateTime", "occurrencePeriod", "occurrenceTiming"),)),
    "ChargeItem": Obj({
        **COMMON, "status": CODE, "code": CONCEPT, "subject": REFERENCE, "context": REFERENCE,
        "occurrenceDateTime": DATETIME, "occurrencePeriod": PERIOD, "enteredDate": DATETIME,
        "quantity": QUANTITY, "reason": Many(CONCEPT),
        "performer": Many(Obj({"actor": REFERENCE}, required=("actor",))),
    }, required=("status", "code", "subject"),
        choices=(("occurrenceDateTime", "occurrencePeriod", "occurrenceTiming"),)),
    "Condition": Obj({
        **COMMON, "code": CONCEPT, "subject": REFERENCE, "encounter": REFERENCE, "recordedDate": DATETIME,
    }, required=("subject",)),
    "Encounter": Obj({
        **COMMON, "status": CODE, "period": PERIOD, "reasonCode": Many(CONCEPT),
    }, required=("status", "class")),
    "Device": Obj({
        **COMMON, "status": CODE, "type": CONCEPT, "manufacturer": STRING, "modelNumber": STRING,
        "serialNumber": STRING, "patient": REFERENCE,
        "deviceName": Many(Obj({"name": STRING, "type": CODE}, required=("name", "type"))),
        "property": Many(Obj({"type": CONCEPT, "valueCode": Many(CONCEPT)}, required=("type",))),
        "udiCarrier": Many(Obj()),
    }),
    "Practitioner": Obj({
        **COMMON, "qualification": Many(Obj({"code": CONCEPT}, required=("code",))),
    }),
    "PractitionerRole": Obj({
        **COMMON, "practitioner": REFERENCE, "code": Many(CONCEPT), "specialty": Many(CONCEPT),
    }),
    "Coverage": Obj({
        **COMMON, "status": CODE, "beneficiary": REFERENCE,
        "payor": Many(Obj({"display": STRING, "identifier": IDENTIFIER, "reference": REF})),
    }, required=("status", "beneficiary", "payor")),
}
