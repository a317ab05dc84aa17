"""How deeply JSON nests, measured without recursion.

Every later step (JSON Schema, FHIR repairs, model validation, error messages) walks JSON
recursively; a value nested a few hundred levels deep exhausts Python's stack there. So the
depth is checked first, here, with an explicit stack.
"""
from __future__ import annotations

from typing import Any

# Real CDS Hooks requests nest about 10-15 levels (body > prefetch > Bundle > entry > resource >
# extension > ...). 100 leaves room for nested extensions and contained resources while keeping
# every recursive step far below Python's recursion limit.
DEFAULT_MAX_DEPTH = 100
# Above this the recursive steps after the check are no longer safe, whatever is configured.
HARD_MAX_DEPTH = 250


_CONTAINERS = (dict, list)


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
