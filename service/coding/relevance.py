"""Does this FHIR data involve an implanted drug pump? The cheap gate in front of the engine.

Minimal version (the audit needs the gate before the real-traffic work lands): a resource
involves a pump when one of its codings is a pump service code (CPT 62367-62370, 95990/95991)
or a pumpcds pump-visit activity, directly or through the site mapping. Raw JSON is walked
without model validation, so the gate stays near-free on data that has nothing to do with pumps.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from .vocabulary import PUMPCDS, Vocabulary

PUMP_SERVICE_CODES = frozenset({"62367", "62368", "62369", "62370", "95990", "95991"})
PUMP_ACTIVITIES = frozenset({"electronic-analysis", "reprogramming", "refill"})


def _codings(node: Any) -> Iterable[Mapping[str, Any]]:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("code"), str) and "system" in item:
                yield item
            stack.extend(v for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, (dict, list)))


def _signals_pump(coding: Mapping[str, Any], vocabulary: Vocabulary) -> bool:
    system = coding.get("system")
    code = str(coding.get("code") or "").strip()
    if not code:
        return False
    mapped = vocabulary.site_mapping.get((str(system or "").strip(), code))
    if mapped in PUMP_ACTIVITIES:
        return True
    name = vocabulary.system(system if isinstance(system, str) else None)
    if name in ("cpt", "hcpcs"):
        return code in PUMP_SERVICE_CODES
    return name == PUMPCDS and code in PUMP_ACTIVITIES


def involves_pump(resources: Iterable[Mapping[str, Any]], vocabulary: Vocabulary) -> bool:
    """True when any resource carries a pump service code or a pump-visit activity."""
    return any(_signals_pump(c, vocabulary) for r in resources for c in _codings(r))
