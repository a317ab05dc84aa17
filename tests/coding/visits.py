"""Hand-written `PumpVisit`s for rule tests: the engine reads only these facts, so each rule can be
checked without FHIR (the FHIR -> facts step has its own tests and the samples)."""
from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from service.coding.findings import Evidence
from service.coding.visit import ChosenCode, DrugUse, ParameterChange, Performer, Pump, PumpVisit

DOS = dt.date(2026, 11, 20)
RN = Performer("Practitioner/rn", "staff", "RN")
MD = Performer("Practitioner/md", "physician", "MD")
PA = Performer("Practitioner/pa", "qhp", "PA")
SUPERVISOR = Performer("Practitioner/md", "physician", "MD", supervising=True)
SYNCHROMED = Pump("programmable-pump", "intrathecal", "SynchroMed II", "Medtronic", "Device/pump", True)
ISOMED = Pump("nonprogrammable-pump", "intrathecal", "IsoMed", "Medtronic", "Device/pump", True)
DOSE_UP = ParameterChange("daily-dose", "0.5 mg/d", "0.55 mg/d", "Observation/dose")
VOLUME = ParameterChange("reservoir-volume", "2 mL", "20 mL", "Observation/vol")
ALL_DOCS = frozenset({
    "doc-visit-date", "doc-device-identification", "doc-route", "doc-reservoir-status", "doc-alarm-status",
    "doc-prescription-status", "doc-performer-attestation", "doc-no-change-statement", "doc-indication",
    "doc-parameter-change", "doc-change-reason", "doc-post-change-verification", "doc-refill-details",
    "doc-next-refill-date", "doc-supervising-physician", "doc-no-reprogramming-statement", "doc-waste-amount",
    "doc-qhp-skill-reason", "doc-separate-problem",
})


def chosen(code: str, *, ref: str | None = None, system: str = "cpt", modifiers: tuple[str, ...] = (),
           units: int = 1, reasons: tuple[str, ...] = (), billed: bool = True) -> ChosenCode:
    return ChosenCode(code, system, (ref or f"ServiceRequest/sr-{code}",), modifiers, units, reasons, billed)


def visit(**changes: Any) -> PumpVisit:
    """A fully documented programmable intrathecal pump visit; override any fact."""
    base = PumpVisit(
        hook="order-sign", date_of_service=DOS, pump=SYNCHROMED, analysed=True, refilled=False,
        activity_source="documented", performers=(MD,), documented=ALL_DOCS,
        patient_reference="Patient/pt", encounter_reference="Encounter/enc",
        evidence={"pump": (Evidence("Device/pump", "pump: programmable-pump"),)},
    )
    return replace(base, **changes)


def drug(**changes: Any) -> DrugUse:
    base = DrugUse("baclofen", "J0475", 2.0, "10 mg", 0.0, True, True, "MedicationAdministration/ma")
    return replace(base, **changes)
