"""Is a drug-pump visit involved at all? Decided on raw FHIR JSON before anything is parsed.

order-sign and encounter-discharge fire for every order and discharge in a hospital, almost none
of them about an implanted drug pump. This test is what lets pumpcds answer those at once with no
cards, no 412 and no FHIR call (docs/fhir-input.md, "Relevance gate"). It must be cheap: it walks
the JSON once, reads codings and a few device and dosage elements, and builds nothing.

Pump content is any of:
- a pump-service code (CPT/HCPCS listed under `relevance.service_codes` in data/vocabulary.yaml),
  on any resource (orders, charges, procedures, the encounter's type or reason);
- a code of the pumpcds CodeSystem, or a local code the site mapping maps onto one;
- an implanted-pump Device: a recognised device type or pump model (name, model number, maker);
- a refill drug (data/drugs.yaml) given or ordered by a pump route (intrathecal, epidural,
  intraspinal, intraventricular).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .terminology import PUMPCDS_SYSTEM
from .vocabulary import Vocabulary

PUMP_ROUTE_TARGETS = frozenset({"intrathecal", "epidural", "spinal", "intraventricular"})
_MED_TYPES = frozenset({"MedicationAdministration", "MedicationRequest", "MedicationOrder", "MedicationStatement"})


def _resources(items: Iterable[Any]) -> Iterator[Mapping[str, Any]]:
    """Resources, with Bundles opened (entries and nested Bundles)."""
    stack = list(items)
    stack.reverse()
    while stack:
        item = stack.pop()
        if type(item) is not dict:
            if not isinstance(item, Mapping):
                continue
            item = dict(item)  # a caller's other Mapping type; JSON itself decodes to dict
        if item.get("resourceType") == "Bundle":
            entries = item.get("entry")
            if isinstance(entries, list):
                for e in reversed(entries):
                    if type(e) is dict:
                        stack.append(e.get("resource"))
            continue
        yield item


def _codings(node: Any) -> list[tuple[str, str]]:
    """Every (system, code) pair in a resource, contained resources included.

    Plain `type() is` checks on purpose: JSON decodes to dict and list, and abc isinstance checks
    would cost more than everything else on the path of an unrelated order."""
    out: list[tuple[str, str]] = []
    stack = [node]
    pop, push = stack.pop, stack.append
    while stack:
        cur = pop()
        if type(cur) is dict:
            code = cur.get("code")
            if type(code) is str:
                system = cur.get("system")
                out.append((system.strip() if type(system) is str else "", code.strip()))
            for key, value in cur.items():
                t = type(value)
                if (t is dict or t is list) and key != "text":
                    push(value)
        elif type(cur) is list:
            for v in cur:
                t = type(v)
                if t is dict or t is list:
                    push(v)
    return out


def _texts(resource: Mapping[str, Any]) -> list[str]:
    """Device names, model number and maker: where a pump model is named."""
    out = [resource.get("modelNumber"), resource.get("manufacturer")]
    names = resource.get("deviceName")
    if isinstance(names, list):
        out.extend(n.get("name") for n in names if type(n) is dict)
    dtype = resource.get("type")
    if type(dtype) is dict:
        out.append(dtype.get("text"))
    return [t for t in out if isinstance(t, str) and t]


def _routes(resource: Mapping[str, Any]) -> list[Any]:
    dosage = resource.get("dosage")
    routes = [dosage.get("route")] if type(dosage) is dict else []
    for key in ("dosageInstruction", "dosage"):
        items = resource.get(key)
        if type(items) is dict:  # a single object where R4 wants a list
            items = [items]
        if isinstance(items, list):
            routes.extend(d.get("route") for d in items if type(d) is dict)
    return [r for r in routes if r is not None]


def _drug_named(resource: Mapping[str, Any], codes: list[tuple[str, str]], vocabulary: Vocabulary) -> bool:
    rxnorm = {c for s, c in codes if vocabulary.system(s) == "rxnorm"}
    hcpcs = {c for s, c in codes if vocabulary.system(s) == "hcpcs"}
    texts: list[str] = []
    for key in ("medicationCodeableConcept", "medicationReference"):
        value = resource.get(key)
        if type(value) is dict:
            for k in ("text", "display"):
                if isinstance(value.get(k), str):
                    texts.append(value[k])
            for c in value.get("coding") or ():
                if type(c) is dict and isinstance(c.get("display"), str):
                    texts.append(c["display"])
    return vocabulary.drug_for(rxnorm, texts, hcpcs) is not None


def _pump_route(route: Any, vocabulary: Vocabulary) -> bool:
    for system, code in _codings(route):
        name = vocabulary.system(system)
        if name == "snomed" and vocabulary.routes.get(code) in PUMP_ROUTE_TARGETS:
            return True
        if system == PUMPCDS_SYSTEM and code in PUMP_ROUTE_TARGETS:
            return True
        if vocabulary.site_mapping.get((system, code)) in PUMP_ROUTE_TARGETS:
            return True
    return False


def resource_involves_pump(resource: Mapping[str, Any], vocabulary: Vocabulary) -> bool:
    codes = _codings(resource)
    service_codes, device_types, mapping = vocabulary.pump_service_codes, vocabulary.device_types, vocabulary.site_mapping
    for system, code in codes:
        if code in service_codes or code in device_types:  # cheap pre-check; the system decides
            name = vocabulary.system(system)
            if (name in ("cpt", "hcpcs") and code in service_codes) or (name == "snomed" and code in device_types):
                return True
        if system == PUMPCDS_SYSTEM or (mapping and (system, code) in mapping):
            return True
    rtype = resource.get("resourceType")
    if rtype == "Device":
        kind, _ = vocabulary.model_kind(*_texts(resource))
        return kind is not None
    if rtype in _MED_TYPES:
        routes = _routes(resource)
        return bool(routes) and any(_pump_route(r, vocabulary) for r in routes) and _drug_named(resource, codes, vocabulary)
    return False


def involves_pump(resources: Iterable[Mapping[str, Any]], vocabulary: Vocabulary) -> bool:
    """True when any of these raw FHIR resources (Bundles are opened) carries pump content.

    Pure and cheap; never raises on odd JSON (anything that is not a resource is skipped).
    """
    return any(resource_involves_pump(r, vocabulary) for r in _resources(resources))
