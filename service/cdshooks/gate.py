"""The hook-level relevance gate: is this call about a drug-pump visit, judged from the request alone?

Runs after the request checks and before any prefetch requirement, parsing or FHIR call
(docs/fhir-input.md, "Relevance gate"). It wraps `coding.relevance.involves_pump` around what the
request carries: the draft orders and the values of this service's prefetch keys.

- PUMP: pump content was sent; the call goes on as before (412 still possible when the data that
  decides the code can be had neither from prefetch nor from the FHIR server).
- NONE: what was sent has no pump content: `200 {"cards": []}` at once.
- UNKNOWN: nothing was sent that could show a visit's work (no draft order and no prefetch at
  all, or at encounter close neither procedures nor charges): the data is fetched from the FHIR
  server and the same test is made on what comes back before anything is parsed; with no FHIR
  server to ask, the answer is no cards (a pump visit is not plausible on no evidence). When the
  visit's work (procedures, charges) could not be fetched, the question stays open: 412.
"""
from __future__ import annotations

from enum import Enum
from typing import Any

from ..coding.relevance import involves_pump
from ..coding.vocabulary import Vocabulary
from .services import GateSilence
from .validation import HookRequest


class Relevance(Enum):
    PUMP = "pump"
    NONE = "none"
    UNKNOWN = "unknown"


def _carries_resources(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if value.get("resourceType") == "Bundle":
        entries = value.get("entry")
        return isinstance(entries, list) and len(entries) > 0
    return isinstance(value.get("resourceType"), str)


def judge(request: HookRequest, vocabulary: Vocabulary) -> Relevance:
    spec = request.spec
    sent: list[Any] = [request.context.get(k) for k in spec.draft_order_keys]
    prefetch = request.prefetch or {}
    work_sent = False
    for template in spec.prefetch:
        if template.key not in prefetch:
            continue
        value = prefetch[template.key]
        if isinstance(value, dict) and value.get("resourceType") == "OperationOutcome":
            continue  # the client's own fetch failed: nothing was said
        if template.key in spec.work_keys:
            work_sent = True  # null (looked, found nothing) says as much as data
        sent.append(value)
    if involves_pump([s for s in sent if isinstance(s, dict)], vocabulary):
        return Relevance.PUMP
    if spec.gate_silence is GateSilence.RESOURCES_SENT:
        return Relevance.NONE if any(_carries_resources(s) for s in sent) else Relevance.UNKNOWN
    return Relevance.NONE if work_sent else Relevance.UNKNOWN
