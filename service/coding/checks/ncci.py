"""Payer edits on the lines still billed: NCCI procedure-to-procedure pairs, medically unlikely
edits (units per day) and the fee schedule's modifier indicators, from the CMS files."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..findings import FindingKind, Severity
from .base import Run, finding, synthetic_source
from .registry import CODE_LIMITS, CODES, TEXT, TEXTS, Param, Stage, check

if TYPE_CHECKING:
    from ..rulebook import Rule
    from ..visit import ChosenCode


@check("ncci-ptp", stage=Stage.EDITS, params={
    "bypass_modifiers": Param(TEXTS, doc="modifiers that bypass an edit whose modifier indicator is 1"),
    "em_bypass_modifiers": Param(TEXTS, required=False,
                                 doc="modifiers that bypass such an edit only on the pair's E/M line (25)"),
    "em_codes": Param(CODES, required=False, doc="the E/M codes em_bypass_modifiers apply to"),
    "suggested_modifier": Param(TEXT, doc="offered as the one-click alternative to removing the column-2 code"),
}, cms_tables=("ptp",))
def ncci_ptp(run: Run, rule: Rule) -> None:
    billed = {c.code: c for c in run.billed()}
    if len(billed) < 2:
        return
    ptp = run.rs.cms.ptp
    bypass = set(rule.params["bypass_modifiers"])
    em_bypass = set(rule.params.get("em_bypass_modifiers") or ())
    em_codes = set(rule.params.get("em_codes") or ())
    for edit in ptp.edits_for(billed.keys(), run.visit.date_of_service):
        removed = run.removed()
        if edit.column1 in removed or edit.column2 in removed:
            continue
        col1, col2 = billed[edit.column1], billed[edit.column2]
        common: dict[str, str | None] = {
            "column1": edit.column1, "column2": edit.column2, "modifier_indicator": edit.modifier_indicator,
            "file_release": ptp.source.release if ptp.source else None, **synthetic_source(ptp)}
        evidence = run.visit.evidence_for(f"code:{edit.column1}", f"code:{edit.column2}")
        if edit.modifier_indicator == "0":
            run.findings.append(finding(run, rule, FindingKind.DROP_CODE, code=edit.column1, replaces=[edit.column2],
                                        affected=col2.carriers, evidence=evidence, params=common))
        elif edit.modifier_indicator == "1" and not _bypassed(col1, col2, bypass, em_bypass, em_codes):
            run.findings.append(finding(run, rule, FindingKind.WARNING, severity=Severity.WARNING,
                                        code=edit.column2, affected=col2.carriers, evidence=evidence,
                                        modifiers=[rule.params["suggested_modifier"]],
                                        params={**common, "action": "drop-or-add-modifier",
                                                "bypass_modifiers": ", ".join(sorted(bypass))}))


def _bypassed(col1: ChosenCode, col2: ChosenCode, bypass: set[str], em_bypass: set[str], em_codes: set[str]) -> bool:
    """An NCCI-associated modifier on either line; 25 counts only on the E/M line of the pair."""
    if bypass & set(col1.modifiers + col2.modifiers):
        return True
    return any(em_bypass & set(c.modifiers) for c in (col1, col2) if c.code in em_codes)


@check("ncci-mue", stage=Stage.EDITS, params={
    "fallback": Param(CODE_LIMITS, required=False, doc="units per day used when the MUE file has no row for the code"),
}, cms_tables=("mue",))
def ncci_mue(run: Run, rule: Rule) -> None:
    mue = run.rs.cms.mue
    fallback = {str(k): int(v) for k, v in rule.params.get("fallback", {}).items()}
    for c in run.billed():
        limit = mue.limit(c.code)
        value, mai = (limit.value, limit.mai) if limit is not None else (fallback.get(c.code), None)
        if value is None or c.units <= value:
            continue
        run.findings.append(finding(run, rule, FindingKind.REPLACE_CODE, code=c.code, replaces=[c.code],
                                    units=value, affected=c.carriers, evidence=run.visit.evidence_for(f"code:{c.code}"),
                                    params={"billed_units": str(c.units), "mue": str(value), "mai": mai,
                                            **(synthetic_source(mue) if limit is not None else {})}))


@check("modifier-indicators", stage=Stage.EDITS, cms_tables=("mpfs",))
def modifier_indicators(run: Run, rule: Rule) -> None:
    mpfs = run.rs.cms.mpfs
    for c in run.billed():
        if not c.modifiers:
            continue
        for modifier, name, value in mpfs.disallowed_modifiers(c.code, c.modifiers):
            run.findings.append(finding(run, rule, FindingKind.WARNING, severity=rule.severity, code=c.code,
                                        modifiers=[modifier], affected=c.carriers,
                                        evidence=run.visit.evidence_for(f"code:{c.code}"),
                                        params={"indicator": name, "indicator_value": value,
                                                "action": "remove-modifier", **synthetic_source(mpfs)}))
