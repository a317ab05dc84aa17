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
_URI = re.compile(r"\S*")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _calendar_day(value: str) -> bool:
    if len(value) < 10:
        return True
    try:
        dt.date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Primitive:
    """A FHIR primitive type: its name in messages and the test a JSON value must pass."""

    name: str
    test: Callable[[Any], bool]


STRING = Primitive("a string", lambda v: type(v) is str)
CODE = Primitive("a code", lambda v: type(v) is str and _CODE.fullmatch(v) is not None)
URI = Primitive("a URI", lambda v: type(v) is str and _URI.fullmatch(v) is not None)
ID = Primitive("an id", lambda v: type(v) is str and _ID.fullmatch(v) is not None)
DATETIME = Primitive("a date or date-time",
                     lambda v: type(v) is str and _DATETIME.fullmatch(v) is not None and _calendar_day(v))
INSTANT = Primitive("an instant", lambda v: type(v) is str and _INSTANT.fullmatch(v) is not None and _calendar_day(v))
DECIMAL = Primitive("a decimal number", lambda v: number(v) is not None)
INTEGER = Primitive("an integer", lambda v: integer(v) is not None)
BOOLEAN = Primitive("true or false", lambda v: boolean(v) is not None)


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


def _name(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(resource)"


def _check_obj(node: dict[str, Any], shape: Obj, loc: Loc, out: Checked) -> None:
    """Walks the object's own elements (fewer than a shape lists), never recursing deeper than the shape."""
    fields = shape.fields
    for key, value in node.items():
        spec = fields.get(key)
        if spec is None or value is None:
            continue
        if spec is STRING:
            if type(value) is not str:
                out.problems.append(f"{_name((*loc, key))}: not a string")
        else:
            _check(value, spec, (*loc, key), out)
    for key in shape.required:
        if node.get(key) is None:
            out.problems.append(f"{_name((*loc, key))}: missing (required)")
    for group in shape.choices:
        present = [k for k in group if k in node]
        if len(present) > 1:
            out.problems.append(f"{_name(loc)}: more than one of {', '.join(present)}")
    if shape.one_required and not any(k in node for k in shape.one_required):
        choice = os.path.commonprefix(list(shape.one_required)) + "[x]"
        out.problems.append(f"{_name((*loc, choice))}: missing (required)")


def _check(value: Any, spec: Spec, loc: Loc, out: Checked) -> None:
    kind = type(spec)
    if kind is Primitive:
        if not spec.test(value):  # type: ignore[union-attr]
            out.problems.append(f"{_name(loc)}: not {spec.name}")  # type: ignore[union-attr]
    elif kind is Obj:
        if type(value) is dict:
            _check_obj(value, spec, loc, out)  # type: ignore[arg-type]
        else:
            out.problems.append(f"{_name(loc)}: not a JSON object")
    elif type(value) is list:
        item = spec.item  # type: ignore[union-attr]
        for i, element in enumerate(value):
            if type(element) is dict:
                _check_obj(element, item, (*loc, i), out)
            else:
                out.problems.append(f"{_name((*loc, i))}: not a JSON object")
    elif type(value) is dict:
        out.wraps.append(loc)
        _check_obj(value, spec.item, (*loc, 0), out)  # type: ignore[union-attr]
    else:
        out.problems.append(f"{_name(loc)}: not a list")


def check(resource: dict[str, Any]) -> Checked:
    """Problems with the elements pumpcds reads (empty: none) and the single objects to wrap."""
    out = Checked()
    shape = SHAPES.get(resource.get("resourceType"))  # type: ignore[arg-type]
    if shape is not None:
        _check_obj(resource, shape, (), out)
    return out


# -- data types ----------------------------------------------------------------------------------
EXTENSION = Obj(required=("url",))
CODING = Obj({"system": URI, "code": CODE, "display": STRING, "extension": Many(EXTENSION)})
EXTENSION.fields.update({"url": URI, "valueCode": CODE, "valueCoding": CODING})
CONCEPT = Obj({"coding": Many(CODING), "text": STRING})
REFERENCE = Obj({"reference": STRING, "display": STRING})
QUANTITY = Obj({"value": DECIMAL, "unit": STRING, "code": CODE, "system": URI})
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
        "payor": Many(Obj({"display": STRING, "identifier": IDENTIFIER, "reference": STRING})),
    }, required=("status", "beneficiary", "payor")),
}
