"""Device reader: the pump's kind, model and target; which device is the visit's pump."""
from __future__ import annotations

import pytest

from service.coding.readers import device
from service.coding.readers.notes import VisitNotes

from .conftest import SCT, P, concept, observed


def dev(did="pump", **extra):
    return {"resourceType": "Device", "id": did, "status": "active", **extra}


@pytest.mark.parametrize("d, kind", [
    (dev(type=concept(SCT, "118426006")), ("subcutaneous-reservoir", None, "intraventricular")),
    (dev(type=concept(P, "programmable-pump"), property=[{"type": concept(P, "target"), "valueCode": [concept(P, "epidural")]}]),
     ("programmable-pump", None, "epidural")),
    (dev(deviceName=[{"name": "SynchroMed II", "type": "model-name"}]), ("programmable-pump", "SynchroMed II", None)),
    (dev(modelNumber="Prometra II 40 mL"), ("programmable-pump", "prometra ii", None)),
    (dev(type={"text": "infusion pump"}), (None, None, None)),
])
def test_kind_model_and_target(terms, d, kind) -> None:
    assert device.kind_of(d, terms) == kind


def test_the_referenced_device_is_the_pump_else_the_first_recognised(terms) -> None:
    other = dev("infusion", type={"text": "infusion pump"})
    pump = dev(deviceName=[{"name": "SynchroMed II", "type": "model-name"}], serialNumber="NGP1", manufacturer="Medtronic")
    retired = dev("old", status="inactive", deviceName=[{"name": "SynchroMed II", "type": "model-name"}])
    devices = [retired, other, pump]
    kinds = {id(d): device.kind_of(d, terms) for d in devices}
    notes = VisitNotes(device_refs=["Device/pump"], targets=["intrathecal"])
    chosen = device.pump(devices, kinds, notes)
    assert (chosen.reference, chosen.kind, chosen.target, chosen.identified) == ("Device/pump", "programmable-pump", "intrathecal", True)
    assert chosen.manufacturer == "Medtronic" and {"doc-device-identification", "doc-route"} <= notes.documented
    assert observed(notes, "pump") == ["pump: programmable implanted pump (SynchroMed II)"]
    notes = VisitNotes()
    assert device.pump(devices, kinds, notes).reference == "Device/pump"  # old one is inactive
    assert device.implanted_ids(devices, kinds) == {"old", "pump"}


def test_no_device_keeps_the_target(terms) -> None:
    assert device.pump([], {}, VisitNotes(targets=["spinal", "intrathecal", "intrathecal"])).target == "intrathecal"
    assert device.resolve_target(["spinal"]) == "spinal" and device.resolve_target([]) is None
