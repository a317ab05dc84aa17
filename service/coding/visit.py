"""`PumpVisit`: the facts of one pump visit, in the domain's words, derived once from FHIR.

The rules read only these facts, never FHIR, so a rule can be checked (and tested) against a
visit written by hand, and the engine stays pure.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .findings import Evidence

SYSTEMIC_TARGETS = frozenset({"intravenous", "intra-arterial"})
NOT_ANALYSABLE = frozenset({"nonprogrammable-pump", "subcutaneous-reservoir", "venous-access-port", "external-pump"})


@dataclass(frozen=True)
class Pump:
    kind: str | None = None  # pumpcds pump-kind code
    target: str | None = None  # pumpcds target code, or "spinal" when only intraspinal is known
    model: str | None = None
    manufacturer: str | None = None
    reference: str | None = None
    identified: bool = False  # serial number or UDI on record

    @property
    def analysable(self) -> bool:
        """Can be read electronically (a programmable pump, or a pump of unknown kind)."""
        return self.kind not in NOT_ANALYSABLE

    @property
    def systemic(self) -> bool:
        return self.target in SYSTEMIC_TARGETS or self.kind in {"external-pump", "venous-access-port"}

    def describe(self) -> str:
        kind = {
            "programmable-pump": "programmable pump",
            "nonprogrammable-pump": "non-programmable pump",
            "subcutaneous-reservoir": "subcutaneous reservoir",
            "external-pump": "external pump",
            "venous-access-port": "venous access port",
        }.get(self.kind or "", "pump of unknown kind")
        target = {"spinal": "intraspinal", "intra-arterial": "intra-arterial"}.get(self.target or "", self.target or "")
        text = f"{target} {kind}".strip()
        return f"{text} ({self.model})" if self.model else text


@dataclass(frozen=True)
class ParameterChange:
    parameter: str  # pumpcds parameter code
    old: str
    new: str
    reference: str

    def describe(self) -> str:
        return f"{self.parameter.replace('-', ' ')} changed from {self.old} to {self.new}"


@dataclass(frozen=True)
class Performer:
    reference: str
    role: str | None  # "physician" | "qhp" | "staff" | None (qualification unknown)
    credential: str | None = None
    supervising: bool = False

    @property
    def is_qhp(self) -> bool | None:
        """Physician or other QHP; None when the qualification is not on record."""
        return None if self.role is None else self.role in {"physician", "qhp"}

    def describe(self) -> str:
        if self.role is None:
            return "performer of unknown qualification"
        who = "clinical staff" if self.role == "staff" else "physician/QHP"
        return f"{who} ({self.credential})" if self.credential else who


@dataclass(frozen=True)
class ChosenCode:
    """A CPT/HCPCS/ICD-10-CM code already on the visit, with every resource that carries it."""

    code: str
    system: str  # "cpt" | "hcpcs" | "icd10cm"
    carriers: tuple[str, ...]
    modifiers: tuple[str, ...] = ()
    units: int = 1
    reasons: tuple[str, ...] = ()  # ICD-10-CM codes given as the reason for this line
    billed: bool = True  # False when only a Procedure records it (not an order or a charge)


@dataclass(frozen=True)
class DrugUse:
    name: str  # drug key in drugs.yaml
    hcpcs: str
    amount: float | None  # in billing units of the HCPCS code (e.g. 2.5 = 25 mg of J0475's 10 mg)
    unit: str  # the billing unit, e.g. "10 mg"
    wasted: float | None  # billing units discarded; None when not recorded
    single_dose_container: bool | None
    supplied_by_practice: bool | None
    reference: str


@dataclass(frozen=True)
class PumpVisit:
    hook: str
    date_of_service: dt.date
    pump: Pump = field(default_factory=Pump)
    analysed: bool = False
    refilled: bool = False
    reprogramming_recorded: bool = False  # a reprogramming activity, whatever changed
    changes: tuple[ParameterChange, ...] = ()
    activity_source: str = "none"  # "documented" | "chosen-code" | "none"
    performers: tuple[Performer, ...] = ()
    qhp_reasons: tuple[str, ...] = ()
    codes: tuple[ChosenCode, ...] = ()
    diagnoses: tuple[tuple[str, str], ...] = ()  # (ICD-10-CM code, reference)
    drug: DrugUse | None = None
    documented: frozenset[str] = frozenset()
    payer_identifiers: tuple[str, ...] = ()  # "system|value"
    payer_names: tuple[str, ...] = ()
    separate_problem: bool = False
    signature: str = "unknown"  # "signed" | "unsigned" (a note or result left unsigned) | "unknown"
    evidence: dict[str, tuple[Evidence, ...]] = field(default_factory=dict)
    patient_reference: str | None = None
    encounter_reference: str | None = None
    input_problems: tuple[Evidence, ...] = ()  # resources skipped and data unavailable
    # code-deciding facts whose data could not be had (fact -> why, in words; unknowns.py)
    undecided: dict[str, str] = field(default_factory=dict)
    # (what, why) in a clinician's words for the one data card; no ids or key names
    unreadable: tuple[tuple[str, str], ...] = ()

    def reprogrammed(self, counted_parameters: tuple[str, ...] | frozenset[str]) -> bool:
        """Reprogrammed under a payer profile: a counted parameter changed, or a reprogramming
        activity is on record without saying which parameters changed."""
        if any(c.parameter in counted_parameters for c in self.changes):
            return True
        return self.reprogramming_recorded and not self.changes

    @property
    def main_performers(self) -> tuple[Performer, ...]:
        return tuple(p for p in self.performers if not p.supervising)

    @property
    def qhp_performed(self) -> bool | None:
        """True if a physician/QHP did the work, False if only clinical staff, None if unknown."""
        roles = [p.is_qhp for p in self.main_performers]
        if any(r is True for r in roles):
            return True
        if roles and all(r is False for r in roles):
            return False
        return None

    @property
    def supervisor(self) -> Performer | None:
        return next((p for p in self.performers if p.supervising), None)

    def code(self, code: str) -> ChosenCode | None:
        return next((c for c in self.codes if c.code == code), None)

    def codes_in(self, codes: set[str] | frozenset[str] | list[str] | tuple[str, ...]) -> list[ChosenCode]:
        wanted = set(codes)
        return [c for c in self.codes if c.code in wanted]

    def evidence_for(self, *facts: str) -> tuple[Evidence, ...]:
        out: list[Evidence] = []
        for fact in facts:
            out.extend(self.evidence.get(fact, ()))
        return tuple(out)

    def describe_activities(self) -> str:
        parts = []
        # a constant-flow pump or a reservoir has no electronics: never say it was analysed
        if (self.analysed or self.reprogramming_recorded or self.changes) and self.pump.analysable:
            parts.append("electronic analysis")
        if self.reprogramming_recorded or self.changes:
            parts.append("reprogramming")
        if self.refilled:
            parts.append("refill")
        if not parts:
            return "no pump activity recorded"
        return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
