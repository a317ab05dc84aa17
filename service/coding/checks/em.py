"""A same-day E/M beside a pump service: it needs its modifier and a separately identifiable problem."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..findings import FindingKind
from .base import Run, finding
from .registry import CODES, ELEMENT, FLAG, TEXT, TEXTS, Param, Stage, check

if TYPE_CHECKING:
    from ..rulebook import Rule


@check("em-same-day", stage=Stage.LINES, params={
    "em_codes": Param(CODES, doc="the E/M codes checked"),
    "modifier": Param(TEXT, doc="the modifier for a significant, separately identifiable E/M"),
    "pump_care_diagnoses": Param(TEXTS, doc="diagnoses that describe the pump care itself, not a separate problem"),
    "pump_line_diagnoses_are_pump_care": Param(FLAG, doc="the pump line's own diagnoses are the same problem"),
    "separate_problem_element": Param(ELEMENT, doc="the element that documents the separate problem"),
})
def em_same_day(run: Run, rule: Rule) -> None:
    """No E/M without a separate problem; with one, the modifier. An E/M that has the modifier but
    no separate problem on record is dropped with "document the separate problem" as the alternative."""
    v = run.visit
    service = run.rs.service_codes
    if run.final_code is None and not any(c.code in service for c in v.codes):
        return
    modifier = rule.params["modifier"]
    pump_care = {d.upper() for d in rule.params["pump_care_diagnoses"]}
    if rule.params["pump_line_diagnoses_are_pump_care"]:
        pump_care |= {r.upper() for c in v.codes if c.code in service for r in c.reasons}
    for c in v.codes_in(rule.params["em_codes"]):
        separate = v.separate_problem or any(r.upper() not in pump_care for r in c.reasons)
        evidence = v.evidence_for(f"code:{c.code}")
        if modifier in c.modifiers:
            if not separate:
                run.findings.append(finding(run, rule, FindingKind.DROP_CODE, replaces=[c.code], affected=c.carriers,
                                            missing=[rule.params["separate_problem_element"]], evidence=evidence))
            continue
        if separate:
            run.findings.append(finding(run, rule, FindingKind.REPLACE_CODE, code=c.code, replaces=[c.code],
                                        modifiers=[*c.modifiers, modifier], affected=c.carriers, evidence=evidence))
        else:
            run.findings.append(finding(run, rule, FindingKind.DROP_CODE, replaces=[c.code], affected=c.carriers,
                                        evidence=evidence))
