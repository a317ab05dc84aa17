"""The compiled schemas (shape_schema.py) are a fast yes for the walk of shapes.py: a resource they
accept is one the walk passes untouched, and the resources real clients send are accepted."""
from __future__ import annotations

import copy
import datetime as dt
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.fhir import shape_schema, shapes
from service.fhir.parse import parse_resource

ROOT = Path(__file__).resolve().parents[2]
PRIMITIVES = {name: p for name, p in vars(shapes).items() if isinstance(p, shapes.Primitive)}
# the patterns whose schema says exactly what the test says (the rest may refuse more)
EXACT = ("STRING", "TRIMMED", "CODE", "URI", "ID")
SPACES = [chr(c) for c in range(0x110000) if chr(c).isspace()]


def _validator(schema: dict[str, Any]) -> Any:
    return jsonschema_rs.validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema", **schema})


SCHEMAS = {name: _validator(p.schema) for name, p in PRIMITIVES.items()}


def _passes(primitive: shapes.Primitive, value: Any) -> bool:
    """The walk leaves the value as it is: it passes the test, or its mend has nothing to say."""
    if primitive.test(value):
        return True
    mended = primitive.mend(value, "x")
    return mended is not None and mended[1] is None


def _untouched(resource: dict[str, Any]) -> bool:
    c = shapes.check(resource)
    return not (c.problems or c.wraps or c.mends or c.repairs)


def test_the_white_space_class_is_what_python_calls_white_space() -> None:
    as_schema = _validator({"type": "string", "pattern": f"^[{shapes.WS}]$"})
    every = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    assert [ch for ch in every if as_schema.is_valid(ch)] == SPACES
    assert SPACES == [ch for ch in every if re.fullmatch(r"\s", ch)]


_TEXT = st.text(alphabet=st.sampled_from([*"aZ09-./:#T+Z_é", *SPACES[:12], "\u3000", "\x00", "\u200b"]), max_size=12)
_DATES = st.builds(
    lambda y, m, d, t: f"{y:04d}-{m:02d}-{d:02d}" + t, st.integers(0, 2100), st.integers(0, 13), st.integers(0, 32),
    st.sampled_from(["", "T10:15:00Z", "T10:15", "T24:00:00Z", "T10:15:00.5+14:00", "T10:15:00-15:00", "T10:15:60Z"]))
_VALUES = st.one_of(_TEXT, _DATES, st.sampled_from(["2026", "2026-02", "2026-13", "urn:uuid:1", "http://x/Patient/1",
                                                   "#p1", "Patient/p 1", "x" * 65, "1.5", "true", "5"]),
                    st.integers(-2**70, 2**70), st.floats(allow_nan=False), st.booleans(), st.none(),
                    st.just({}), st.just([]), st.just({"a": 1}))


@settings(max_examples=3000, deadline=None)
@given(_VALUES)
def test_a_value_a_primitive_schema_accepts_passes_its_test(value: Any) -> None:
    for name, primitive in PRIMITIVES.items():
        try:
            accepted = SCHEMAS[name].is_valid(value)
        except Exception:  # what jsonschema-rs cannot hold is walked (shape_schema.passes)
            continue
        if accepted:
            assert _passes(primitive, value), (name, value)
        elif name in EXACT:
            assert not primitive.test(value), (name, value)


def test_every_calendar_day_is_accepted_but_29_february() -> None:
    day = dt.date(2023, 1, 1)
    while day.year < 2025:
        text = day.isoformat()
        for value in (text, text + "T08:30:00+01:00"):
            assert SCHEMAS["DATETIME"].is_valid(value) is not (day.month == 2 and day.day == 29), value
        assert SCHEMAS["INSTANT"].is_valid(text + "T08:30:00.120Z") is not (day.month == 2 and day.day == 29)
        day += dt.timedelta(days=1)
    assert not SCHEMAS["INSTANT"].is_valid("2024-03-01")
    assert [v for v in ("2024-04-31", "2023-02-30", "2024-00-10", "0000-01-01") if SCHEMAS["DATETIME"].is_valid(v)] == []


def _resources(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("resourceType") in shapes.SHAPES:
            yield node
        for v in node.values():
            yield from _resources(v)
    elif isinstance(node, list):
        for v in node:
            yield from _resources(v)


SAMPLE_RESOURCES = [r for path in sorted((ROOT / "fhir_samples").rglob("*.json"))
                    for r in _resources(json.loads(path.read_text()))]


def test_every_sample_resource_the_walk_passes_takes_the_fast_path() -> None:
    clean = [r for r in SAMPLE_RESOURCES if _untouched(r)]
    assert len(clean) > 500 and {r["resourceType"] for r in clean} >= set(shapes.SHAPES) - {"DeviceRequest", "Condition"}
    refused = [f"{r['resourceType']}/{r.get('id')}" for r in clean if not shape_schema.passes(r)]
    assert refused == []


def _places(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        if k != "resourceType":
            yield (*path, k)
            yield from _places(v, (*path, k))


def _mutation(value: Any, rng: random.Random) -> Any:
    """What broken clients send: wrong JSON types, empties, nulls, stray spaces, bad dates, lists
    as single objects and objects as lists, numbers past 64 bits."""
    choices: list[Any] = [None, "", 0, 0.0, 1, -2.5, True, False, {}, [], 2**70, "true", "5", "1.5e3", " x", "x ",
                          "a\u00a0b", "a  b", "\t", "2026-02-29", "2025-02-29", "2026-04-31", "2026-11-20T10:15",
                          "urn:uuid:5", "Patient/a b", "#", "x" * 70, {"x": 1}, [1], [{}], ["a"]]
    if isinstance(value, list) and value:
        choices += [value[0], [*value, value[0]], [None]]
    if isinstance(value, dict):
        choices += [[value], {**value, "valueString": "a", "valueBoolean": True}, {k: None for k in value}]
    if isinstance(value, str):
        choices += [value + " ", " " + value, value.replace("-", ""), value[:-1], value + "\n", value.upper()]
    return copy.deepcopy(rng.choice(choices))


@settings(max_examples=1500, deadline=None)
@given(st.integers(0, len(SAMPLE_RESOURCES) - 1), st.integers(0, 2**32), st.integers(1, 4))
def test_a_mutated_resource_the_schema_accepts_is_one_the_walk_passes(index: int, seed: int, how_many: int) -> None:
    rng = random.Random(seed)
    resource = copy.deepcopy(SAMPLE_RESOURCES[index])
    for _ in range(how_many):
        places = list(_places(resource))
        if not places:
            break
        path = rng.choice(places)
        parent: Any = resource
        for part in path[:-1]:
            parent = parent[part]
        if rng.random() < 0.2 and isinstance(parent, dict):  # or add an element the shape reads
            shape_fields = list(shapes.SHAPES[resource["resourceType"]].fields)
            parent[rng.choice(shape_fields)] = _mutation(parent.get(path[-1]), rng)
        else:
            parent[path[-1]] = _mutation(parent[path[-1]], rng)
    if shape_schema.passes(resource):
        assert _untouched(resource), orjson.dumps(resource).decode()


@pytest.mark.parametrize("resource", [
    {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueInteger": 2**80},
    {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": float("nan")}},
    {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "note": [{"text": dt.date(2026, 1, 1)}]},
])
def test_values_json_cannot_hold_are_left_to_the_walk(resource: dict[str, Any]) -> None:
    assert shape_schema.checked(resource).problems == shapes.check(resource).problems
    parse_resource(resource, "x")  # never raises


GOOD = {"STRING": "a", "TRIMMED": "mL", "CODE": "a", "URI": "http://x", "ID": "a", "REF": "Patient/a",
        "DATETIME": "2026-01-02", "INSTANT": "2026-01-02T03:04:05Z", "DECIMAL": 1.5, "INTEGER": 2, "BOOLEAN": True}


def test_every_primitive_is_tested() -> None:
    assert set(PRIMITIVES) == set(GOOD) and len(PRIMITIVES) >= 11


def _exemplar(spec: Any) -> Any:
    """A value the walk passes for this element."""
    if isinstance(spec, shapes.Many):
        return [_exemplar(spec.item)]
    if isinstance(spec, shapes.Obj):
        return {k: _exemplar(spec.fields[k]) if k in spec.fields else {"text": "x"}
                for k in (*spec.required, *spec.one_required[:1])} or {"x": "y"}
    return GOOD[next(name for name, p in PRIMITIVES.items() if p is spec)]


def _rule_breakers(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The resource with each required element missing or empty, each choice taken twice, each
    one-of-required choice left out: what only the object-level rules of a shape catch."""
    shape = shapes.SHAPES[resource["resourceType"]]
    for key in shape.required:
        for empty in (None, "", {}, [], 0, False, "missing"):
            broken = copy.deepcopy(resource)
            if empty == "missing":
                broken.pop(key, None)
            else:
                broken[key] = empty
            yield broken
    for group in shape.choices:
        for a, b in zip(group, group[1:]):
            broken = copy.deepcopy(resource)
            for k in (a, b):
                broken[k] = _exemplar(shape.fields[k]) if k in shape.fields else {"text": "x"}
            yield broken
    if shape.one_required:
        broken = copy.deepcopy(resource)
        for k in shape.one_required:
            broken.pop(k, None)
        yield broken
        yield {**broken, shape.one_required[0]: {}}


@pytest.mark.parametrize("rtype", sorted(shapes.SHAPES))
def test_the_object_rules_of_each_shape_are_in_its_schema(rtype: str) -> None:
    samples = [r for r in SAMPLE_RESOURCES if r["resourceType"] == rtype and _untouched(r)][:5]
    shape = shapes.SHAPES[rtype]
    samples = samples or [{"resourceType": rtype, **{k: _exemplar(shape.fields[k]) if k in shape.fields else {"text": "x"}
                                                     for k in (*shape.required, *shape.one_required[:1])}}]
    assert all(_untouched(r) and shape_schema.passes(r) for r in samples)
    broken = [b for r in samples for b in _rule_breakers(r)]
    flagged = [b for b in broken if not _untouched(b)]
    assert flagged or not (shape.required or shape.choices or shape.one_required)
    assert [b for b in flagged if shape_schema.passes(b)] == []
