"""Documentation the record must show: the physician/QHP reason, incident-to supervision, and
the checklist of the code the visit ends up with (codes.yaml, under its alert policy)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..findings import FindingKind
from .base import Run, finding, matches
from .registry import CODES, ELEMENT, ELEMENT_FACTS, NOT_APPLICABLE, TEXTS, Param, Stage, check

if TYPE_CHECKING:
    from ..rulebook import Rule


@check("qhp-reason", stage=Stage.LINES, params={
    "codes": Param(CODES, doc="codes that need a physician's or QHP's skill"),
    "element": Param(ELEMENT, doc="the element that says why the skill was needed"),
})
def qhp_reason(run: Run, rule: Rule) -> None:
    v = run.visit
    element = rule.params["element"]
    if run.final_code not in rule.params["codes"] or v.qhp_reasons or element in v.documented:
        return
    run.findings.append(finding(run, rule, FindingKind.MISSING_DOCUMENTATION, code=run.final_code,
                                missing=[element], evidence=v.evidence_for("performer")))


@check("incident-to", stage=Stage.LINES, params={
    "codes": Param(CODES, doc="codes clinical staff may do under a physician's supervision"),
    "payers_medicare_text": Param(TEXTS, doc="payer names containing one of these follow Medicare's incident-to rules"),
    "element": Param(ELEMENT, doc="the element naming the supervising physician"),
})
def incident_to(run: Run, rule: Rule) -> None:
    v = run.visit
    if run.final_code not in rule.params["codes"] or v.qhp_performed is not False:
        return
    if v.supervisor is not None and v.supervisor.role == "physician":
        return
    medicare = [t.lower() for t in rule.params["payers_medicare_text"]]
    if not any(m in n.lower() for n in v.payer_names for m in medicare):
        return
    run.findings.append(finding(run, rule, FindingKind.WARNING, code=run.final_code, missing=[rule.params["element"]],
                                evidence=v.evidence_for("performer", "payer")))


@check("documentation", stage=Stage.CHECKLIST, params={
    "not_applicable": Param(NOT_APPLICABLE, required=False, doc="elements never asked of a visit with these facts"),
    "evidence": Param(ELEMENT_FACTS, required=False, doc="evidence shown when the element is missing"),
})
def documentation(run: Run, rule: Rule) -> None:
    """Elements the code requires (or the site asked for) that the record lacks; not those another
    finding or rule asks for (codes.yaml `asked_by`), nor those ruled out for the visit."""
    v = run.visit
    code = run.final_code
    if code is None or v.activity_source == "none" and not v.codes:
        return
    table = run.rs.codes
    skip = run.claimed_elements() | {e for e, p in table.policy.items() if p.asked_by}
    view = run.view()
    skip |= {n["element"] for n in rule.params.get("not_applicable", ()) if matches(n["when"], view)}
    missing = [e.code for e in table.checklist(code)
               if e.code not in v.documented and e.code not in skip
               and (table.required(code, e.code) or e.code in run.rs.prompts)]
    if missing:
        shown = rule.params.get("evidence", {})
        evidence = v.evidence_for(*(shown[e] for e in missing if e in shown))
        run.findings.append(finding(run, rule, FindingKind.MISSING_DOCUMENTATION, code=code, missing=missing,
                                    evidence=evidence))
