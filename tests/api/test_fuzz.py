"""Fuzz (issue 12): mutated real requests never get a 5xx.

Each example takes one request from fhir_samples/requests/ (or a feedback document), applies a few
mutations at random places (drop a key, swap a type, put null/huge/odd values, nest deeply, break a
Bundle's entry/resource/link) and posts it through the real app to both hooks or to feedback.
The answer must be below 500; a 4xx must be an OperationOutcome; a 200 from a hook must be a
conformant CDS Hooks response (checked by the `app` fixture). Examples are derandomized (tests/
conftest.py profile "ci"); PUMPCDS_FUZZ_EXAMPLES and PUMPCDS_HYPOTHESIS_PROFILE=explore widen the
search locally.
"""
from __future__ import annotations

import copy
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import SAMPLES
from tests.security.logcapture import LogCapture

EXAMPLES = int(os.environ.get("PUMPCDS_FUZZ_EXAMPLES", "400"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

REQUESTS = {p.name: json.loads(p.read_text()) for p in sorted((SAMPLES / "requests").glob("*.json"))}
FEEDBACK = {
    "feedback": [
        {"card": "6f1f8b0e-6b7e-4a0c-9d55-0c1f7f8a9b10", "outcome": "accepted",
         "acceptedSuggestions": [{"id": "0d7f3b7c-3c55-4f0e-8a5e-3f1d2a9b8c11"}],
         "outcomeTimestamp": "2026-11-20T15:04:05Z"},
        {"card": "9a2b4c6d-1e3f-4a5b-8c7d-9e0f1a2b3c4d", "outcome": "overridden",
         "overrideReason": {"reason": {"code": "documented-elsewhere", "system": "https://pumpcds.org/override-reason",
                                       "display": "Documented elsewhere"},
                            "userComment": "pump interrogated in the OR"},
         "outcomeTimestamp": "2026-11-20T15:04:05.123-05:00"},
    ]
}

# Odd values a field may be replaced with: wrong types, empties, extremes, odd text.
ODD = st.one_of(
    st.sampled_from([None, True, False, 0, -1, 2**63, -(2**63), 10**30, 1e308, -0.0, 0.5, "", " ", "null",
                     "\u0000", "\u202e\ufeff", "é" * 3, "x" * 5000, [], {}, [None], [[]], {"": None},
                     "Bundle", "Procedure", "2026-13-45T99:99:99Z", "0001-01-01T00:00:00+01:00",
                     "9999-12-31T23:59:59-14:00", "http://", "Patient/", "/", "../..", "%00"]),
    st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.none(), max_size=2),
).map(copy.deepcopy)  # later mutations may write into a drawn list or object: never into the constants
DEPTHS = [3, 40, 95, 101, 150, 400, 1000, 1100]
DEEP_MARK = "@@deep:"

Path_ = tuple[Any, ...]


def paths(doc: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every place in the document (the root is ())."""
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from paths(value, prefix + (i,))


def bundles(doc: Any) -> list[Path_]:
    return [p for p in paths(doc) if isinstance(get(doc, p), dict) and get(doc, p).get("resourceType") == "Bundle"]


def get(doc: Any, path: Path_) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def put(doc: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    get(doc, path[:-1])[path[-1]] = value
    return doc


def drop(doc: Any, path: Path_) -> Any:
    if not path:
        return doc
    parent = get(doc, path[:-1])
    del parent[path[-1]]
    return doc


def swap_type(value: Any) -> Any:
    """The same content in another JSON type."""
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return value[0] if value else {}
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    return {}


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> tuple[Any, list[str]]:
    """The document after 1-4 mutations, and a description of them (shown when a test fails)."""
    doc = copy.deepcopy(doc)
    done: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "odd", "swap", "nest", "bundle", "bundle", "duplicate"]))
        if op == "bundle":
            targets = bundles(doc)
            if not targets:
                continue
            at = draw(st.sampled_from(targets))
            bundle = get(doc, at)
            entries = bundle.get("entry") if isinstance(bundle.get("entry"), list) else []
            where = draw(st.sampled_from(["entry", "link", "type", "resourceType"] + ["item"] * bool(entries)))
            if where == "item":
                i = draw(st.integers(0, len(entries) - 1))
                sub = draw(st.sampled_from([(), ("resource",), ("resource", "resourceType"), ("resource", "id")]))
                target = entries[i]
                if sub and isinstance(target, dict) and isinstance(target.get("resource"), dict):
                    put(doc, at + ("entry", i) + sub, draw(ODD))
                else:
                    put(doc, at + ("entry", i), draw(ODD))
                done.append(f"bundle {at} entry[{i}]{sub} odd")
            elif where == "link":
                bundle["link"] = draw(st.one_of(ODD, st.builds(lambda url: [{"relation": "next", "url": url}], ODD)))
                done.append(f"bundle {at} link odd")
            else:
                bundle[where] = draw(ODD)
                done.append(f"bundle {at} {where} odd")
            continue
        at = draw(st.sampled_from(list(paths(doc))))
        if op == "drop":
            doc = drop(doc, at)
        elif op == "odd":
            doc = put(doc, at, draw(ODD))
        elif op == "swap":
            doc = put(doc, at, swap_type(get(doc, at)))
        elif op == "nest":
            doc = put(doc, at, f"{DEEP_MARK}{draw(st.sampled_from(DEPTHS))}@@")
        elif op == "duplicate":
            value = get(doc, at)
            if isinstance(value, list) and value:
                doc = put(doc, at, value * draw(st.sampled_from([2, 50, 400])))
        done.append(f"{op} {at}")
    return doc, done


def to_text(doc: Any) -> str:
    """JSON text with deep-nesting marks expanded (json.dumps itself cannot write 1,000 levels)."""
    text = json.dumps(doc)
    while DEEP_MARK in text:
        start = text.index(json.dumps(DEEP_MARK)[:-1])
        end = text.index('@@"', start) + 3
        depth = int(text[start + len(DEEP_MARK) + 1 : end - 3])
        text = text[:start] + "[" * depth + '{"a": 1}' + "]" * depth + text[end:]
    return text


@pytest.fixture
def errors() -> Iterator[list[str]]:
    """The service's 'unhandled error' lines, to show where a 500 came from."""
    capture = LogCapture()
    logging.getLogger().addHandler(capture)
    yield capture.lines
    logging.getLogger().removeHandler(capture)


def check(resp: Any, what: list[str], errors: list[str]) -> None:
    event(f"HTTP {resp.status_code}")  # the spread of answers: pytest --hypothesis-show-statistics
    if resp.status_code >= 500:
        crash = [line for line in errors if "unhandled error" in line][-1:]
        pytest.fail(f"{resp.status_code} after {what}: {resp.get_data(as_text=True)[:300]} {crash}")
    if resp.status_code >= 400:
        assert resp.get_json()["resourceType"] == "OperationOutcome", what


def endpoint(app: Any, hook: Any, other: bool) -> str:
    services = app.extensions["pumpcds"].services
    ids = sorted(services)
    own = next((sid for sid in ids if services[sid].hook == hook), ids[0])
    return "/cds-services/" + (next(sid for sid in ids if sid != own) if other else own)


@FUZZ
@given(data=st.data())
def test_mutated_hook_requests_never_get_a_5xx(app, client, errors, data):
    name = data.draw(st.sampled_from(sorted(REQUESTS)), label="sample")
    doc, what = data.draw(mutated(REQUESTS[name]), label="mutations")
    hook = REQUESTS[name].get("hook")
    path = endpoint(app, hook, other=data.draw(st.integers(0, 9), label="other hook") == 0)
    resp = client.post(path, data=to_text(doc), content_type="application/json")
    check(resp, [name, path, *what], errors)


@FUZZ
@given(data=st.data())
def test_mutated_feedback_never_gets_a_5xx(app, client, errors, data):
    doc, what = data.draw(mutated(FEEDBACK), label="mutations")
    path = endpoint(app, "order-sign", other=data.draw(st.booleans(), label="other service")) + "/feedback"
    resp = client.post(path, data=to_text(doc), content_type="application/json")
    check(resp, [path, *what], errors)
