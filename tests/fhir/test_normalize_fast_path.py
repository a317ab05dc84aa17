"""The repair pre-check only ever skips resources the repairs would leave as they are."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.fhir.normalize import _clean, might_need_repair, normalize_resource
from service.fhir.parse import bundle_entries

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["id", "code", "system", "status", "reference", "display", "text", "start", "effectiveDateTime", "note",
        "fhir_comments", "value", "unit"]
STRINGS = st.sampled_from([
    "", " x", "x ", "a b", "ok", "Patient/p 1", "Patient/p1", "p_1", "urn:uuid:1", "2026-11-20T10:15", "2026-11-20T10:15:00Z",
    "2026-11-20T10:15:00.5", "tab\t", "\u00a0nbsp", "thin\u2009", "line\n", "\x1f", "null", "{}", "caf\u00e9", "x\u2013y",
]) | st.text(max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | STRINGS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(KEYS), children, max_size=4),
    max_leaves=15,
)


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5))
def test_a_resource_the_pre_check_passes_needs_no_repair(body: dict[str, Any]) -> None:
    resource = {"resourceType": "Procedure", **body}
    if not might_need_repair(resource):
        repairs: list[str] = []
        assert _clean(resource, None, repairs, "") == resource and repairs == []


def _sample_resources() -> list[dict[str, Any]]:
    out = []
    for path in sorted((ROOT / "fhir_samples" / "requests").glob("*.json")):
        body = json.loads(path.read_text())
        for value in [*(body.get("prefetch") or {}).values(), body["context"].get("draftOrders")]:
            if isinstance(value, dict):
                out.extend(r for r in (bundle_entries(value) if value.get("resourceType") == "Bundle" else [value])
                           if isinstance(r, dict))
    return out


def test_most_sample_resources_skip_the_walk_and_all_read_the_same() -> None:
    resources = _sample_resources()
    skipped = 0
    for r in resources:
        fast, repairs = normalize_resource(r)
        slow = _clean(r, None, [], "")
        assert fast == slow
        skipped += fast is r
    assert skipped > 0.8 * len(resources)


@pytest.mark.parametrize("value", ["2026-11-20T10:15", " completed", "completed ", "", "Patient/p 1"])
def test_each_kind_of_repair_is_noticed(value: str) -> None:
    key = "reference" if "/" in value else "status" if value.strip() != value or not value else "effectiveDateTime"
    assert might_need_repair({"resourceType": "Procedure", key: value})
