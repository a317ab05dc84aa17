"""How deeply JSON nests, measured without recursion.

Every later step (JSON Schema, FHIR repairs, model validation, error messages) walks JSON
recursively; a value nested a few hundred levels deep exhausts Python's stack there. So the
depth is checked first, here, with an explicit stack.
"""
from __future__ import annotations

import re
from typing import Any

# Real CDS Hooks requests nest about 10-15 levels (body > prefetch > Bundle > entry > resource >
# extension > ...). 100 leaves room for nested extensions and contained resources while keeping
# every recursive step far below Python's recursion limit.
DEFAULT_MAX_DEPTH = 100
# Above this the recursive steps after the check are no longer safe, whatever is configured.
HARD_MAX_DEPTH = 250


_CONTAINERS = (dict, list)


# JSON text -> its brackets (any kind as "(" and ")": valid JSON pairs them right), quotes, backslashes
_KEEP = bytes.maketrans(b"{[}]", b"(())")
_DROP = bytes(b for b in range(256) if b not in b'{}[]"\\')
_STRINGS = re.compile(rb'"[^"]*"')
# bracket bytes x passes the text check may spend before leaving the answer to the walk
_TEXT_BUDGET = 4_000_000


def text_deeper_than(raw: bytes, limit: int) -> bool | None:
    """The depth answer from valid JSON text at C speed (the walk takes ~115 us on a typical
    request, this ~30 us); None when the text cannot tell cheaply (a backslash next to a quote,
    or brackets past the budget).

    Once strings are gone what is left is the structure; each pass removes the innermost pairs
    exactly once (`bytes.replace` does not rescan what it joins), so passes = depth."""
    left = raw.translate(_KEEP, _DROP)
    if b'\\"' in left:  # maybe an escaped quote: quotes might not pair up
        return None
    if left.count(b'"') != 2 * left.count(b'""'):
        # some string holds brackets: only an even run of quotes is sure to close and reopen, so
        # drop those, then whole strings (what dropping joined is string content on both sides)
        left = _STRINGS.sub(b"", left.replace(b'""', b""))
    left = left.translate(None, b'"\\')
    if len(left) * min(limit, 64) > _TEXT_BUDGET:
        return None
    depth = 0
    while left:
        depth += 1
        if depth > limit:
            return True
        left = left.replace(b"()", b"")
    return False


def too_deep(value: Any, limit: int) -> str | None:
    """Where `value` nests more than `limit` containers deep (a path like `prefetch.device.note[0]`,
    `(body)` at the top), or None when it does not. A scalar has depth 0, `{}` or `[]` depth 1."""
    return _first_too_deep(value, limit) if _deeper_than(value, limit) else None


def _deeper_than(value: Any, limit: int) -> bool:
    """The answer alone, one level at a time (about twice as fast as keeping paths): every call pays this."""
    level = [value] if isinstance(value, _CONTAINERS) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [c for node in level for c in (node.values() if isinstance(node, dict) else node)
                 if isinstance(c, _CONTAINERS)]
    return False


def _first_too_deep(value: Any, limit: int) -> str | None:
    """Where the nesting goes too deep (only asked once it does)."""
    if not isinstance(value, _CONTAINERS):
        return None
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(value, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if depth > limit:
            return _path(path)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(child, (dict, list)):
                # the path is only kept for the first levels: enough to name the field at fault
                stack.append((child, depth + 1, path + (key,) if len(path) < 4 else path))
    return None


def _path(parts: tuple[Any, ...]) -> str:
    text = ""
    for part in parts:
        name = str(part)[:40]  # keys are client text: keep the message short
        text += f"[{part}]" if isinstance(part, int) else (f".{name}" if text else name)
    return text or "(body)"
