"""Device: which pump the visit is about (the one the record points at, else the first recognised
one), its kind, model and target, and whether it is identified (serial number or UDI)."""
from __future__ import annotations

from ...fhir.jsonview import JSON, items, ref_of, resource_id, text
from ..visit import Pump
from ..vocabulary import PUMPCDS
from .notes import VisitNotes
from .terms import Terms, words

# implanted drug pumps (pumpcds pump-kind); an external pump or a venous access port is not one
IMPLANTED_KINDS = frozenset({"programmable-pump", "nonprogrammable-pump", "subcutaneous-reservoir"})
RETIRED = frozenset({"entered-in-error", "inactive"})

Kind = tuple[str | None, str | None, str | None]  # (pump kind, model name, target)


def kind_of(d: JSON, terms: Terms) -> Kind:
    """Kind and target from the device type (pumpcds or SNOMED CT) and its properties, else the
    kind of a known model named in its names, model number or maker."""
    kind = target = None
    vocab = terms.vocab
    for system, code, _ in terms.codings(d.get("type")):
        if system == PUMPCDS and code in terms.kinds:
            kind = code
        elif system == "snomed" and code in vocab.device_types:
            spec = vocab.device_types[code]
            kind = kind or spec.get("kind")
            target = spec.get("target") or target
    for prop in items(d.get("property")):
        prop_codes = {c for s, c, _ in terms.codings(prop.get("type")) if s == PUMPCDS}
        for value in items(prop.get("valueCode")):
            for system, code, _ in terms.codings(value):
                if system != PUMPCDS:
                    continue
                if "pump-kind" in prop_codes and code in terms.kinds:
                    kind = code
                if "target" in prop_codes and code in terms.targets:
                    target = code
    names = [text(n.get("name")) for n in items(d.get("deviceName"))]
    model_kind, model = vocab.model_kind(*names, text(d.get("modelNumber")), text(d.get("manufacturer")))
    if model:
        model = next((n for n in names if n and model in n.lower()), model)
    return kind or model_kind, model, target


def implanted_ids(devices: list[JSON], kinds: dict[int, Kind]) -> set[str]:
    """Ids of the implanted drug pumps among the devices."""
    return {rid for d in devices if (rid := resource_id(d)) and kinds[id(d)][0] in IMPLANTED_KINDS}


def pump(devices: list[JSON], kinds: dict[int, Kind], notes: VisitNotes) -> Pump:
    candidates = [d for d in devices if d.get("status") not in RETIRED]
    referenced = {r.rstrip("/").split("/")[-1] for r in notes.device_refs}
    chosen = next((d for d in candidates if resource_id(d) in referenced), None)
    if chosen is None:
        chosen = next((d for d in candidates if kinds[id(d)][0]), None)
    target = resolve_target(notes.targets)
    if chosen is None:
        return Pump(target=target)
    kind, model, device_target = kinds[id(chosen)]
    ref = ref_of(chosen)
    target = device_target or target
    identified = bool(chosen.get("serialNumber") or items(chosen.get("udiCarrier")))
    if identified and (model or chosen.get("modelNumber")):
        notes.documented.add("doc-device-identification")
    if target:
        notes.documented.add("doc-route")
    notes.note("pump", ref, f"pump: {words(kind) if kind else 'kind not recorded'}{f' ({model})' if model else ''}")
    return Pump(kind, target, model, text(chosen.get("manufacturer")), ref, identified)


def resolve_target(targets: list[str]) -> str | None:
    """The most often named specific target; "spinal" when only intraspinal is known."""
    specific = [t for t in targets if t != "spinal"]
    if specific:
        return max(set(specific), key=specific.count)
    return "spinal" if targets else None
