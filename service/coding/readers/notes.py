"""`VisitNotes`: what the readers have taken from a visit's resources so far (mutable; frozen into
a `PumpVisit` by freeze.py). Every fact is noted with its evidence: the resource reference and a
PHI-free statement, so each finding can say which resource made it fire."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from ...fhir.jsonview import JSON, Quantity
from ..findings import Evidence
from ..visit import ParameterChange

CodeKey = tuple[str, str]  # (system name, code)


@dataclass
class VisitNotes:
    activities: set[str] = field(default_factory=set)
    changes: list[ParameterChange] = field(default_factory=list)
    readings: set[str] = field(default_factory=set)
    documented: set[str] = field(default_factory=set)
    evidence: dict[str, list[Evidence]] = field(default_factory=lambda: defaultdict(list))
    performer_refs: dict[str, bool] = field(default_factory=dict)  # reference -> supervising
    order_performer_refs: list[str] = field(default_factory=list)
    qhp_reasons: list[str] = field(default_factory=list)
    # per chosen code: (reference, "billed" | "record") of each carrier, modifiers, units per carrier, reasons
    code_carriers: dict[CodeKey, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    code_modifiers: dict[CodeKey, list[str]] = field(default_factory=lambda: defaultdict(list))
    code_units: dict[CodeKey, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    code_reasons: dict[CodeKey, list[str]] = field(default_factory=lambda: defaultdict(list))
    diagnoses: list[tuple[str, str]] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    device_refs: list[str] = field(default_factory=list)
    drug_sources: list[tuple[JSON, Quantity | None]] = field(default_factory=list)  # (resource, dose)
    drug_rxnorm: set[str] = field(default_factory=set)
    drug_texts: list[str] = field(default_factory=list)
    drug_hcpcs: set[str] = field(default_factory=set)
    concentration: tuple[float, str] | None = None  # (amount per mL, mass unit)
    wasted: Quantity | None = None
    single_dose: bool | None = None
    practice_supplied: bool | None = None
    refill_draft: bool = False
    signed: bool = False
    unsigned: list[str] = field(default_factory=list)

    def note(self, fact: str, reference: str, observed: str, day: dt.date | None = None) -> None:
        self.evidence[fact].append(Evidence(reference, observed, day.isoformat() if day else None))
