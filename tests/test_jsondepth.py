"""How deeply JSON nests: the walk over parsed JSON and the check on the JSON text agree."""
from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.jsondepth import _deeper_than, text_deeper_than, too_deep

_STRINGS = st.text(alphabet=st.sampled_from(list('ab{}[]"\\:, \n/\u00e9\u2028')), max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=False, allow_infinity=False) | _STRINGS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_STRINGS, inner, max_size=4),
    max_leaves=40,
)


def _texts(value: Any) -> list[bytes]:
    """The value as different clients write it: compact, indented, with non-ASCII escaped."""
    return [orjson.dumps(value), json.dumps(value, indent=2).encode(), json.dumps(value, ensure_ascii=True).encode(),
            json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()]


@settings(max_examples=800, deadline=None)
@given(_JSON, st.integers(0, 8))
def test_the_text_check_says_what_the_walk_says(value: Any, limit: int) -> None:
    for raw in _texts(value):
        answer = text_deeper_than(raw, limit)
        if answer is None:
            assert b'\\"' in raw.translate(None, bytes(b for b in range(256) if b not in b'{}[]"\\'))
        else:
            assert answer == _deeper_than(value, limit), raw


def test_a_typical_body_is_answered_from_its_text() -> None:
    body = {"hook": "order-sign", "prefetch": {"p": {"resourceType": "Bundle", "entry": [
        {"resource": {"resourceType": "Observation", "code": {"coding": [{"code": "x", "display": "a [b] {c}"}]}}}]}}}
    raw = orjson.dumps(body)
    depth = 9  # the body, prefetch, p, entry, entry[0], resource, code, coding, coding[0]
    assert [text_deeper_than(raw, n) for n in (depth - 1, depth, depth + 1)] == [True, False, False]
    assert too_deep(body, depth - 1) == "prefetch.p.entry[0]"  # paths name the first levels only


@pytest.mark.parametrize("raw", [b'{"a": "say \\"hi\\""}', b'["a\\\\"]'])
def test_an_escaped_quote_leaves_the_answer_to_the_walk(raw: bytes) -> None:
    assert text_deeper_than(raw, 3) is None



def test_past_the_bracket_budget_the_walk_answers() -> None:
    wide = [[[]] for _ in range(400_000)]  # shallow, but more brackets than the text check spends on
    raw = orjson.dumps({"x": wide})
    assert text_deeper_than(raw, 100) is None
    assert too_deep({"x": wide}, 100) is None and (too_deep({"x": wide}, 3) or "").startswith("x[")
