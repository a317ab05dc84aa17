"""The refill drug on the claim: its HCPCS line and units, and the JW/JZ waste modifiers."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..findings import FindingKind, Severity
from .base import Run, finding
from .registry import DATE, ELEMENT, TEXT, TEXTS, Param, Stage, check

if TYPE_CHECKING:
    from ..rulebook import Rule


def _amount(billing_units: float, unit: str) -> str:
    """2.5 billing units of '10 mg' -> '25 mg'; units spelled out on the card (cards.words)."""
    number, _, name = unit.partition(" ")
    try:
        return f"{billing_units * float(number):g} {name}".strip()
    except ValueError:
        return f"{billing_units:g} x {unit}"


def _units(amount: float | None) -> int | None:
    return None if amount is None else max(1, math.ceil(round(amount, 6)))


@check("drug-line", stage=Stage.LINES, params={
    "line_prefixes": Param(TEXTS, doc="HCPCS lines whose code starts with one of these are drug lines"),
    "waste_modifier": Param(TEXT, doc="the modifier of the discarded-drug line, whose units are the waste"),
})
def drug_line(run: Run, rule: Rule) -> None:
    """The drug the practice supplied, on its own HCPCS line, in billing units rounded up."""
    drug = run.visit.drug
    if drug is None or drug.supplied_by_practice is False:
        return
    prefixes = tuple(rule.params["line_prefixes"])
    lines = [c for c in run.visit.codes if c.system == "hcpcs" and c.code.startswith(prefixes)]
    if not lines and drug.supplied_by_practice is not True:
        return
    units = _units(drug.amount)
    evidence = run.visit.evidence_for("drug")
    common: dict[str, str | None] = {
        "drug": drug.name, "amount": _amount(drug.amount, drug.unit) if drug.amount is not None else None}
    if not lines:
        run.findings.append(finding(run, rule, FindingKind.RECOMMENDED_CODE, code=drug.hcpcs, units=units,
                                    evidence=evidence, params=common))
        return
    for line in lines:
        if line.code != drug.hcpcs:
            run.findings.append(finding(run, rule, FindingKind.REPLACE_CODE, severity=Severity.WARNING,
                                        code=drug.hcpcs, replaces=[line.code], units=units,
                                        affected=line.carriers, evidence=evidence, params=common))
        elif units is not None and rule.params["waste_modifier"] not in line.modifiers and line.units != units:
            run.findings.append(finding(run, rule, FindingKind.REPLACE_CODE, severity=Severity.WARNING,
                                        code=drug.hcpcs, replaces=[line.code], units=units, modifiers=line.modifiers,
                                        affected=line.carriers, evidence=evidence,
                                        params={**common, "billed_units": str(line.units)}))


@check("drug-waste", stage=Stage.LINES, params={
    "waste_modifier": Param(TEXT, doc="the modifier of the line for discarded drug"),
    "no_waste_modifier": Param(TEXT, doc="the modifier saying no drug was discarded"),
    "jw_from": Param(DATE, doc="the discarded-drug line is asked for from this date of service"),
    "jz_from": Param(DATE, doc="the no-waste modifier is asked for from this date of service"),
    "waste_element": Param(ELEMENT, doc="the element recording the amount discarded"),
})
def drug_waste(run: Run, rule: Rule) -> None:
    """Single-dose containers only: the amount discarded on record, billed on its own line with
    the waste modifier, or the no-waste modifier when nothing was discarded."""
    v = run.visit
    drug = v.drug
    if drug is None or drug.single_dose_container is not True or drug.supplied_by_practice is False:
        return
    lines = [c for c in v.codes if c.code == drug.hcpcs]
    if not lines and drug.supplied_by_practice is not True:
        return
    day = v.date_of_service
    evidence = v.evidence_for("drug", "waste")
    mods = {m for c in lines for m in c.modifiers}
    if drug.wasted is None:
        run.findings.append(finding(run, rule, FindingKind.MISSING_DOCUMENTATION, severity=Severity.INFO,
                                    code=drug.hcpcs, missing=[rule.params["waste_element"]], evidence=evidence,
                                    params={"drug": drug.name}))
        return
    if drug.wasted <= 0:
        no_waste = rule.params["no_waste_modifier"]
        if day >= rule.params["jz_from"] and no_waste not in mods:
            run.findings.append(finding(run, rule, FindingKind.WARNING, code=drug.hcpcs, modifiers=[no_waste],
                                        affected=[r for c in lines for r in c.carriers], evidence=evidence,
                                        params={"drug": drug.name, "waste": "none", "action": "add-modifier"}))
        return
    waste = rule.params["waste_modifier"]
    used = _units(drug.amount) or 0
    total = _units((drug.amount or 0) + drug.wasted) or 0
    waste_units = total - used
    if waste_units > 0 and day >= rule.params["jw_from"] and waste not in mods:
        run.findings.append(finding(run, rule, FindingKind.WARNING, code=drug.hcpcs, modifiers=[waste],
                                    units=waste_units, evidence=evidence,
                                    params={"drug": drug.name, "waste": _amount(drug.wasted, drug.unit),
                                            "action": "add-line"}))
