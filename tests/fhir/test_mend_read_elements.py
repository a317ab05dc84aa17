"""Without R4 validation only the elements the facts read are repaired, while they are type-checked
(shapes.py): the facts are the same as when every element is repaired first (normalize.py)."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.coding.codetable import default_code_table
from service.coding.facts import VisitReader
from service.coding.vocabulary import Vocabulary
from service.fhir.normalize import normalize_resource
from service.fhir.parse import bundle_entries, parse_many, parse_resource
from service.fhir.resources import VisitResources

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fhir_samples"
NAMES = [p.stem for p in sorted((SAMPLES / "requests").glob("*.json"))
         if not json.loads((SAMPLES / "expected" / p.name).read_text()).get("fhir_server_dir")]
READER = VisitReader(Vocabulary.load(), default_code_table())


def visit_json(name: str) -> tuple[dict[str, Any], list[Any], list[Any]]:
    body = json.loads((SAMPLES / "requests" / f"{name}.json").read_text())
    drafts = bundle_entries(body["context"].get("draftOrders") or {})
    rest: list[Any] = []
    for value in (body.get("prefetch") or {}).values():
        if isinstance(value, dict) and value.get("resourceType") != "OperationOutcome":
            rest.extend(bundle_entries(value) if value.get("resourceType") == "Bundle" else [value])
    return body["context"], drafts, rest


def facts(context: dict[str, Any], drafts: list[Any], rest: list[Any], repair_all: bool) -> Any:
    def prepared(items: list[Any], location: str) -> list[Any]:
        if not repair_all:
            return items
        return [normalize_resource(r, location == "draftOrders")[0] if isinstance(r, dict) else r for r in items]

    orders, issues = parse_many(prepared(drafts, "draftOrders"), "draftOrders")
    found, more = parse_many(prepared(rest, "prefetch:x"), "prefetch:x")
    return READER.read(VisitResources(context, "order-sign", orders, found, issues + more))


def _strings(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str, str]]:
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        if isinstance(v, str) and k != "resourceType":
            out.append(((*path, k), str(k), v))
        else:
            out.extend(_strings(v, (*path, k)))
    return out


def quirk(key: str, value: str, rng: random.Random) -> str:
    """What real EHRs send: stray (Unicode) spaces, a local time, an id with a character ids lack."""
    if "T" in value and value[:4].isdigit() and len(value) > 16:
        return value[:16]
    if key in ("id", "reference") and rng.random() < 0.5:
        return value + "_1"
    return rng.choice([" ", "\u00a0", "\t"]) + value if rng.random() < 0.5 else value + rng.choice([" ", "\u2009", "\n"])


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(NAMES), st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=6))
def test_mending_what_is_read_gives_the_facts_of_repairing_everything(name: str, seed: int, how_many: int) -> None:
    context, drafts, rest = visit_json(name)
    rng = random.Random(seed)
    resources = [r for r in drafts + rest if isinstance(r, dict)]
    for _ in range(how_many):
        r = rng.choice(resources)
        targets = _strings(r)
        if targets:
            path, key, value = rng.choice(targets)
            parent: Any = r
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = quirk(key, value, rng)
    before = orjson.dumps([drafts, rest])
    assert facts(context, drafts, rest, repair_all=False) == facts(context, drafts, rest, repair_all=True)
    assert orjson.dumps([drafts, rest]) == before, "reading in never changes the caller's JSON"


@pytest.mark.parametrize("name", NAMES)
def test_a_resource_needing_no_mend_is_read_as_it_is(name: str) -> None:
    _, drafts, rest = visit_json(name)
    for raw in drafts + rest:
        data, issues = parse_resource(raw, "prefetch:x")
        if data is not None and not issues:
            assert data is raw


def test_the_repairs_of_read_elements_are_reported_as_before() -> None:
    raw = {"resourceType": "Procedure", "id": "p 1", "status": "completed ", "subject": {"reference": "Patient/p 1"},
           "code": {"coding": [{"system": " http://www.ama-assn.org/go/cpt", "code": "62369", "display": ""}]},
           "performedDateTime": "2026-11-20T10:15", "note": [{"text": ""}]}
    data, issues = parse_resource(raw, "x")
    assert data == {"resourceType": "Procedure", "id": "p-1", "status": "completed", "subject": {"reference": "Patient/p-1"},
                    "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62369"}]},
                    "performedDateTime": "2026-11-20T10:15:00Z", "note": [{"text": ""}]}  # note: not read, not mended
    said = issues[0].problem
    for words in ("id: invalid characters in id replaced", "trimmed spaces in status",
                  "subject.reference: invalid characters in referenced id replaced",
                  "trimmed spaces in code.coding[0].system", "removed empty value code.coding[0].display"):
        assert words in said or "(+" in said, words
    assert not issues[0].skipped
