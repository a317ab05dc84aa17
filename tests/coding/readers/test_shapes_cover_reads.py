"""Every element a reader takes a fact from is type-checked when the resource is read in
(service/fhir/shapes.py): taking away any element the shapes do not list leaves the facts of every
sample visit unchanged. So a wrong type can never reach a reader unnoticed and be read as absent."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.cdshooks.services import build_services
from service.cdshooks.validation import check_request
from service.coding.codetable import default_code_table
from service.coding.facts import VisitReader
from service.coding.vocabulary import Vocabulary
from service.config import load_settings
from service.fhir.prefetch import PrefetchResolver
from service.fhir.resources import VisitResources
from service.fhir.shapes import SHAPES, Many, Obj

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "fhir_samples"
NAMES = [p.stem for p in sorted((SAMPLES / "requests").glob("*.json"))
         if not json.loads((SAMPLES / "expected" / p.name).read_text()).get("fhir_server_dir")
         and not json.loads((SAMPLES / "expected" / p.name).read_text()).get("settings")]


def unlisted(node: dict[str, Any], shape: Obj, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths of the elements of `node` its shape does not list (whole elements: nothing under them is read)."""
    for key, value in node.items():
        spec = shape.fields.get(key)
        if spec is None:
            if path or key != "resourceType":
                yield (*path, key)
        elif isinstance(spec, Obj) and isinstance(value, dict):
            yield from unlisted(value, spec, (*path, key))
        elif isinstance(spec, Many) and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    yield from unlisted(item, spec.item, (*path, key, i))


def without(resource: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    copy = orjson.loads(orjson.dumps(resource))
    node = copy
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return copy


@pytest.fixture(scope="module")
def reader() -> VisitReader:
    return VisitReader(Vocabulary.load(), default_code_table())


@pytest.mark.parametrize("name", NAMES)
def test_elements_the_shapes_do_not_list_change_no_fact(reader: VisitReader, name: str) -> None:
    expected = json.loads((SAMPLES / "expected" / f"{name}.json").read_text())
    service = build_services(load_settings(environ={}))[expected["service"]]
    request = check_request(service, json.loads((SAMPLES / "requests" / f"{name}.json").read_text()))
    visit = PrefetchResolver(2000).gather(request, None, "no fhirServer")
    assert visit is not None
    baseline = reader.read(visit)
    tried = 0
    for group in ("draft_orders", "resources"):
        items: list[dict[str, Any]] = getattr(visit, group)
        for i, resource in enumerate(items):
            for path in unlisted(resource, SHAPES[resource["resourceType"]]):
                changed = VisitResources(visit.context, visit.hook, list(visit.draft_orders), list(visit.resources),
                                         list(visit.issues), list(visit.unavailable))
                getattr(changed, group)[i] = without(resource, path)
                assert reader.read(changed) == baseline, f"{name}: {resource['resourceType']}.{'.'.join(map(str, path))} changes a fact"
                tried += 1
    assert tried > 0, name


def _shaped_names(*types: str) -> set[str]:
    """Every element name the shapes of these resource types list, at any depth."""
    names: set[str] = set()
    seen: set[int] = set()
    stack: list[Any] = [SHAPES[t] for t in types]
    while stack:
        spec = stack.pop()
        if isinstance(spec, Many):
            spec = spec.item
        if not isinstance(spec, Obj) or id(spec) in seen:
            continue
        seen.add(id(spec))
        names.update(spec.fields, spec.required, spec.one_required)
        stack.extend(spec.fields.values())
    return names


BILLABLE = ("ServiceRequest", "ChargeItem", "MedicationRequest", "Procedure")
# the resource types each reader module reads (the rest read any of them)
MODULE_TYPES = {
    "procedure.py": ("Procedure",), "observation.py": ("Observation",), "device.py": ("Device",),
    "medication.py": ("MedicationAdministration", "MedicationRequest", "Medication"), "chargeitem.py": ("ChargeItem",),
    "servicerequest.py": ("ServiceRequest",), "practitioner.py": ("Practitioner", "PractitionerRole"),
    "coverage.py": ("Coverage",), "encounter.py": ("Encounter", "Condition"), "codes.py": BILLABLE,
}
# lookups that are not FHIR elements: vocabulary entries, CodeSystem groups, the hook context
NOT_FHIR = {"kind", "target", "documentation", "qhp-skill-reason", "pump-kind", "parameter", "encounterId", "patientId"}


def test_every_element_a_reader_asks_for_is_shaped_for_its_resource_types() -> None:
    """Read statically: each `x.get("name")` and `first_day(x, "name", ...)` in a reader names an
    element the shapes of its resource types list (the test above then checks that the facts behave
    as if it were the right one)."""
    import ast

    sources = [*sorted((ROOT / "service" / "coding" / "readers").glob("*.py")), ROOT / "service" / "coding" / "facts.py"]
    missing: dict[str, list[str]] = {}
    asked = 0
    for path in sources:
        allowed = _shaped_names(*MODULE_TYPES.get(path.name, tuple(SHAPES))) | {"resourceType"} | NOT_FHIR
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            args = node.args[:1] if name == "get" else node.args[1:] if name == "first_day" else []
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    asked += 1
                    if arg.value not in allowed:
                        missing.setdefault(path.name, []).append(arg.value)
    assert asked > 50
    assert missing == {}, f"elements read but not type-checked on reading in: {missing}"
