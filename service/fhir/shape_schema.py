"""The shape check's fast yes: the shapes of shapes.py compiled to JSON Schemas (jsonschema-rs).

Nearly every resource read in has nothing wrong and nothing to mend in the elements the facts
read; the interpreted walk of shapes.py took ~10 us to say so, most of reading a resource in.
Each schema accepts only resources the walk passes untouched: it is stricter where being exact
would cost (no null elements, no single object where a list belongs, no second value[x] even
when empty, no 29 February), so a resource it refuses is walked, and the walk says what is wrong
or what to mend. tests/fhir/test_shape_schema.py checks that on mutated resources.
"""
from __future__ import annotations

from typing import Any

import jsonschema_rs

from .shapes import SHAPES, Checked, Many, Obj, Spec, check

FALSY: list[Any] = [None, "", 0, False, {}, []]  # what `not node.get(key)` takes for missing
TRUTHY = {"not": {"enum": FALSY}}


def _children(shape: Obj) -> list[Obj]:
    return [item for spec in shape.fields.values()
            if isinstance(item := spec.item if isinstance(spec, Many) else spec, Obj)]


def _in_cycles(shape: Obj) -> set[int]:
    """Objects found again inside themselves (extension -> coding -> extension): kept in $defs."""
    cyclic: set[int] = set()

    def walk(node: Obj, path: list[Obj]) -> None:
        for child in _children(node):
            if any(child is p for p in path):
                cyclic.add(id(child))
            else:
                walk(child, [*path, child])
    walk(shape, [shape])
    return cyclic


class _Builder:
    def __init__(self, cyclic: set[int]) -> None:
        self.cyclic = cyclic
        self.defs: dict[str, Any] = {}
        self.names: dict[int, str] = {}

    def spec(self, spec: Spec) -> dict[str, Any]:
        if isinstance(spec, Many):
            return {"type": "array", "items": self.spec(spec.item)}
        if isinstance(spec, Obj):
            if id(spec) not in self.cyclic:
                return self.obj(spec)
            name = self.names.get(id(spec))
            if name is None:
                # named first, so the object's references to itself stop at the name
                name = self.names[id(spec)] = f"object{len(self.names) + 1}"
                self.defs[name] = self.obj(spec)
            return {"$ref": f"#/$defs/{name}"}
        return spec.schema

    def obj(self, shape: Obj) -> dict[str, Any]:
        props = {k: self.spec(v) for k, v in shape.fields.items()}
        out: dict[str, Any] = {"type": "object", "properties": props}
        for k in shape.required:
            props[k] = {"allOf": [props[k], TRUTHY]} if k in props else TRUTHY
        if shape.required:
            out["required"] = list(shape.required)
        if shape.one_required:
            out["anyOf"] = [{"required": [k], "properties": {k: TRUTHY}} for k in shape.one_required]
        exclusive: dict[str, dict[str, bool]] = {}
        for group in shape.choices:
            for k in group:
                exclusive.setdefault(k, {}).update({o: False for o in group if o != k})
        if exclusive:
            out["dependentSchemas"] = {k: {"properties": others} for k, others in exclusive.items()}
        return out


def schema_for(shape: Obj) -> dict[str, Any]:
    builder = _Builder(_in_cycles(shape))
    body = builder.obj(shape)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **body, "$defs": builder.defs}


VALIDATORS = {rtype: jsonschema_rs.validator_for(schema_for(shape)) for rtype, shape in SHAPES.items()}


def passes(resource: dict[str, Any]) -> bool:
    """True only when the walk would find nothing to report or mend (False: walk it to know)."""
    validator = VALIDATORS.get(resource.get("resourceType"))  # type: ignore[arg-type]
    if validator is None:
        return True
    try:
        return bool(validator.is_valid(resource))
    except Exception:  # a value JSON cannot hold (e.g. an int past 64 bits): the walk will judge it
        return False


def checked(resource: dict[str, Any]) -> Checked:
    """shapes.check, answered without the walk when the schema accepts the resource."""
    return Checked() if passes(resource) else check(resource)
