"""What every check works with: the state of one evaluation (`Run`), the facts view conditions
test, and the one way a finding is made."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..codetable import CPT_SYSTEM, HCPCS_SYSTEM
from ..findings import Evidence, Finding, FindingKind, Severity
from ..visit import ChosenCode, PumpVisit

if TYPE_CHECKING:
    from ..engine import RuleSet
    from ..payers import PayerProfile
    from ..rulebook import Rule


@dataclass
class Run:
    """One visit under evaluation: the rules in force, what was found so far, the code decided."""

    visit: PumpVisit
    rs: RuleSet
    profile: PayerProfile
    findings: list[Finding] = field(default_factory=list)
    final_code: str | None = None  # the pump service code this visit ends up with
    _base: dict[str, str] | None = field(default=None, repr=False)
    _view: dict[str, Any] | None = field(default=None, repr=False)

    def removed(self) -> set[str]:
        return {c for f in self.findings for c in f.replaces}

    def claimed_elements(self) -> set[str]:
        return {m for f in self.findings for m in f.missing}

    def billed(self) -> list[ChosenCode]:
        """CPT/HCPCS lines billed on the visit that no earlier finding removes."""
        removed = self.removed()
        return [c for c in self.visit.codes if c.billed and c.system in ("cpt", "hcpcs") and c.code not in removed]

    def params(self, extra: Mapping[str, str | None]) -> dict[str, str]:
        """The card values every finding of this visit carries, plus the finding's own."""
        if self._base is None:
            v = self.visit
            base: dict[str, str | None] = {
                "date_of_service": v.date_of_service.isoformat(),
                "pump": v.pump.describe(),
                "activities": v.describe_activities(),
                "performer": describe_performers(v),
                "performer_reference": next((p.reference for p in v.main_performers), None),
                "encounter_reference": v.encounter_reference,
                "patient_reference": v.patient_reference,
                "changed_parameters": "; ".join(c.describe() for c in v.changes) or None,
                "payer": v.payer_names[0] if v.payer_names else None,
                "payer_profile": self.profile.name,
            }
            self._base = {k: str(val) for k, val in base.items() if val not in (None, "")}
        out = dict(self._base)
        for k, val in extra.items():
            if val in (None, ""):
                out.pop(k, None)
            else:
                out[k] = str(val)
        return out

    def view(self) -> dict[str, Any]:
        """The facts conditions test (`facts_view`), read once per visit."""
        if self._view is None:
            self._view = facts_view(self)
        return self._view


@dataclass
class Decision:
    """The pump-family decision of one visit, filled in as its parts run (checks/selection.py)."""

    chosen: list[str]  # pump service codes on the visit, in order, once each
    carriers: dict[str, tuple[str, ...]]  # the resources carrying each of them
    view: dict[str, Any]  # the facts the selection tables read
    rule: Rule | None = None  # the selection rule that applies
    expected: str | None = None  # the code it chooses (None: no code of the family)
    candidates: list[str | None] = field(default_factory=list)  # every code its matching rows allow
    deciding: list[str] = field(default_factory=list)  # undecided facts the candidates differ on


def describe_performers(v: PumpVisit) -> str | None:
    main = v.main_performers
    if not main:
        return None
    return ", ".join(dict.fromkeys(p.describe() for p in main))


def finding(run: Run, rule: Rule, kind: FindingKind, *, severity: Severity | None = None,
            code: str | None = None, code_system: str | None = None, replaces: Iterable[str] = (),
            modifiers: Iterable[str] = (), units: int | None = None, affected: Iterable[str] = (),
            evidence: Iterable[Evidence] = (), missing: Iterable[str] = (),
            params: Mapping[str, str | None] | None = None) -> Finding:
    """A finding of `rule`; `params` are values for its card template (cards/README.md)."""
    if code and code_system is None:
        code_system = HCPCS_SYSTEM if code[:1].isalpha() else CPT_SYSTEM
    return Finding(
        kind=kind, severity=severity or rule.severity, rule=rule.ref, code=code, code_system=code_system,
        replaces=tuple(dict.fromkeys(replaces)), modifiers=tuple(modifiers), units=units,
        affected=tuple(dict.fromkeys(affected)), evidence=tuple(dict.fromkeys(evidence)),
        missing=tuple(missing), params=run.params(params or {}),
    )


def known_view(run: Run) -> dict[str, Any]:
    """The visit's facts under the names conditions use (registry.FACTS)."""
    v = run.visit
    return {
        "pump_kind": v.pump.kind or "unknown",
        "target": v.pump.target or "unknown",
        "systemic": v.pump.systemic,
        "reprogrammed": v.reprogrammed(run.profile.reprogramming_parameters),
        "reprogramming_recorded": v.reprogramming_recorded or bool(v.changes),  # whatever the payer counts
        "refilled": v.refilled,
        "qhp_performed": v.qhp_performed,
        "analysable": v.pump.analysable,
        "signature": v.signature,
    }


def facts_view(run: Run) -> dict[str, Any]:
    """The facts conditions test; a fact whose data could not be had and that the record does
    not show positively is None (matches either way), never the cheaper answer."""
    view = known_view(run)
    for fact in run.visit.undecided:
        if fact in ("reprogrammed", "refilled") and view[fact] is False:
            view[fact] = None  # not shown is not "not done" when the data could not be read
    return view


def matches(when: Mapping[str, Any], view: Mapping[str, Any]) -> bool:
    """A list is the values allowed; a single value must equal the fact, and an unknown fact
    (None) matches either way (the chosen code breaks ties)."""
    for key, wanted in when.items():
        fact = view.get(key)
        if isinstance(wanted, list):
            if fact not in wanted:
                return False
        elif fact is not None and fact != wanted:
            return False
    return True


def synthetic_source(table: Any) -> dict[str, str]:
    """`test_data` param on a finding that rests on a bundled synthetic CMS table (not a CMS
    release): its card must say so and never call itself verified."""
    source = getattr(table, "source", None)
    return {"test_data": source.kind} if source is not None and source.synthetic else {}
