"""The pump-family decision, made once per visit, so a problem gives exactly one finding.

Its parts are the DECISION-stage checks, each playing one role (registry.Role):
1. PREEMPT: a rule that settles the visit before any selection (programming at the implant session);
2. SELECT: the selection rules, in rules.yaml order; the first whose `applies_when` matches chooses
   the single service code its `rows` allow (a fact not on record matches any row, and the chosen
   code breaks the tie);
3. UNDECIDED: when a fact that decides between the candidate codes could not be read, no code is
   taken as if it were known, and the rule says which codes and which fact;
4. EXPLAIN: when the chosen codes differ from the selected one, the first rule (rules.yaml order)
   that explains the difference names the finding; otherwise the selection rule does.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..findings import FindingKind, Severity
from ..unknowns import FACT_WORDS
from .base import Decision, Run, describe_performers, finding, matches
from .registry import CODES, CONDITIONS, REGISTRY, ROWS, Param, Role, decision

if TYPE_CHECKING:
    from ..rulebook import Rule


def service_codes(rules: Sequence[Rule]) -> frozenset[str]:
    """The codes the decision chooses among: every code of a selection rule's rows."""
    return frozenset(row["code"] for r in rules if _role(r) is Role.SELECT
                     for row in r.params["rows"] if row["code"] is not None)


def preempting_codes(rules: Sequence[Rule]) -> frozenset[str]:
    """The codes of the services that settle a visit before selection (the implant)."""
    return frozenset(c for r in rules if _role(r) is Role.PREEMPT for c in r.params.get("implant_codes", ()))


def _role(rule: Rule) -> Role | None:
    return REGISTRY[rule.check].role


def decide(run: Run, rules: Sequence[Rule]) -> None:
    """Run the decision with the DECISION-stage rules in force (rules.yaml order); sets
    `run.final_code` and adds at most one finding per problem."""
    v = run.visit
    service = run.rs.service_codes
    chosen = [c for c in v.codes if c.code in service]
    d = Decision(list(dict.fromkeys(c.code for c in chosen)), {c.code: c.carriers for c in chosen}, run.view())
    parts = [(REGISTRY[r.check], r) for r in rules]
    for check, rule in parts:
        if check.role is Role.PREEMPT and check.decide is not None and check.decide(run, rule, d):
            run.final_code = None
            return
    if v.activity_source == "none" and not d.chosen:
        return
    for check, rule in parts:
        if check.role is Role.SELECT and check.decide is not None and check.decide(run, rule, d):
            break
    run.final_code = d.expected
    selected = d.rule
    if selected is None:
        return
    if v.undecided:
        d.deciding = _deciding(run, selected, d.candidates)
        if len([c for c in d.candidates if c]) >= 2 and d.deciding:
            run.final_code = None  # even a chosen code among the candidates may be the wrong one
            for check, rule in parts:
                if check.role is Role.UNDECIDED and check.decide is not None:
                    check.decide(run, rule, d)
            return
    evidence = v.evidence_for("pump", "target", "analysis", "electronic-analysis", "reprogramming", "refill",
                              "activities", "performer", *(f"code:{c}" for c in d.chosen))
    expected = d.expected
    if not d.chosen:
        if expected is not None:
            run.findings.append(finding(run, selected, FindingKind.RECOMMENDED_CODE, severity=Severity.INFO,
                                        code=expected, evidence=evidence, params={"reason": _why(run, expected)}))
        return
    if d.chosen == [expected]:
        return
    responsible = selected
    for check, rule in parts:
        if check.role is Role.EXPLAIN and check.decide is not None and check.decide(run, rule, d):
            responsible = rule
            break
    wrong = [c for c in d.chosen if c != expected]
    kind = FindingKind.REPLACE_CODE if expected is not None and expected not in d.chosen else FindingKind.DROP_CODE
    forbidden = set(selected.params.get("forbidden_codes", ()))
    if forbidden and responsible is not selected:
        # wrong for this pump in itself, whatever else is (e.g. bundled): its own finding
        codes = [c for c in wrong if c in forbidden]
        if codes:
            run.findings.append(finding(run, selected, FindingKind.DROP_CODE,
                                        code=expected if expected not in codes else None, replaces=codes,
                                        affected=[r for c in codes for r in d.carriers[c]], evidence=evidence,
                                        params={"reason": _why(run, expected, codes)}))
    run.findings.append(finding(
        run, responsible, kind, code=expected, replaces=wrong,
        affected=[r for c in wrong for r in d.carriers[c]], evidence=evidence,
        params={"pair": " + ".join(d.chosen) if len(d.chosen) > 1 else None, "reason": _why(run, expected, wrong)},
    ))


def _deciding(run: Run, rule: Rule, candidates: list[str | None]) -> list[str]:
    """The undecided facts on which the candidate rows differ."""
    rows = [r for r in rule.params["rows"] if r.get("code") in candidates]
    return [fact for fact in run.visit.undecided if len({r.get("when", {}).get(fact) for r in rows}) > 1]


def _why(run: Run, expected: str | None, wrong: list[str] | None = None) -> str:
    """Plain facts behind the decision, for the card (wording of the decision itself is in cards/)."""
    v = run.visit
    parts = [v.pump.describe(), v.describe_activities()]
    performer = describe_performers(v)
    if performer:
        parts.append(f"by {performer}")
    if v.changes and not v.reprogrammed(run.profile.reprogramming_parameters):
        parts.append("only " + ", ".join(c.parameter.replace("-", " ") for c in v.changes)
                     + f" changed, not reprogramming under the {run.profile.name} payer profile")
    if v.activity_source == "chosen-code":
        parts.append("activities taken from the chosen codes")
    return "; ".join(p for p in parts if p)


# -- the parts -----------------------------------------------------------------------------------

@decision("implant-session", role=Role.PREEMPT, params={
    "implant_codes": Param(CODES, doc="implant codes whose service includes programming the new pump"),
})
def implant_session(run: Run, rule: Rule, d: Decision) -> bool:
    """A pump implanted at this session: its programming is part of the implant code."""
    v = run.visit
    code = next((c for c in rule.params["implant_codes"] if v.code(c) is not None), None)
    if code is None:
        return False
    if d.chosen:
        run.findings.append(finding(
            run, rule, FindingKind.DROP_CODE, code=code, replaces=d.chosen,
            affected=[r for c in d.chosen for r in d.carriers[c]],
            evidence=v.evidence_for(f"code:{code}", *(f"code:{c}" for c in d.chosen)),
            params={"reason": f"the pump was implanted at this session; its programming is part of {code}"},
        ))
    return True


@decision("select", role=Role.SELECT, params={
    "applies_when": Param(CONDITIONS, doc="the pumps this table is for"),
    "rows": Param(ROWS, doc="condition -> code; null: no code of the family"),
    "forbidden_codes": Param(CODES, required=False,
                             doc="codes these pumps never take: reported by this rule even when another explains the pair"),
})
def select(run: Run, rule: Rule, d: Decision) -> bool:
    if not matches(rule.params["applies_when"], d.view):
        return False
    d.rule = rule
    rows = [r for r in rule.params["rows"] if matches(r.get("when", {}), d.view)]
    if not rows:
        d.expected, d.candidates = None, []
        return True
    d.candidates = list(dict.fromkeys(r["code"] for r in rows))
    on_visit = {c.code for c in run.visit.codes}
    d.expected = next((r["code"] for r in rows if r["code"] in on_visit), rows[0]["code"])
    return True


@decision("undecided", role=Role.UNDECIDED)
def undecided(run: Run, rule: Rule, d: Decision) -> bool:
    """Name the candidate codes and the fact that could not be read; never the lower code."""
    v = run.visit
    selected = d.rule.id if d.rule is not None else None
    run.findings.append(finding(
        run, rule, FindingKind.WARNING, severity=rule.severity,
        affected=[r for c in d.chosen for r in d.carriers.get(c, ())],
        evidence=v.evidence_for("pump", "target", "electronic-analysis", "reprogramming", "refill", "performer"),
        params={
            "candidates": " or ".join(c for c in d.candidates if c), "chosen": ", ".join(d.chosen) or None,
            "deciding": "; ".join(FACT_WORDS.get(f, f) for f in d.deciding),
            "unknown_because": "; ".join(dict.fromkeys(v.undecided[f] for f in d.deciding)),
            "selection_rule": selected,
        },
    ))
    return True


@decision("payer-reprogramming", role=Role.EXPLAIN, params={
    "refill_codes": Param(CODES, doc="the codes a visit takes when its changes are not reprogramming"),
})
def payer_reprogramming(run: Run, rule: Rule, d: Decision) -> bool:
    """A reprogramming code where only parameters the payer profile does not count changed."""
    if len(d.chosen) != 1:
        return False
    only = run.rs.codes.get(d.chosen[0])
    changes = run.visit.changes
    counted = run.profile.reprogramming_parameters
    only_uncounted = bool(changes) and not any(c.parameter in counted for c in changes)
    return bool(only is not None and only.reprogrammed and only_uncounted and d.expected in rule.params["refill_codes"])


@decision("analysis-with-refill", role=Role.EXPLAIN, params={
    "analysis_codes": Param(CODES, doc="pump analysis codes"),
    "refill_codes": Param(CODES, doc="refill codes never reported with them"),
})
def analysis_with_refill(run: Run, rule: Rule, d: Decision) -> bool:
    chosen = set(d.chosen)
    return (len(d.chosen) > 1 and bool(chosen & set(rule.params["analysis_codes"]))
            and bool(chosen & set(rule.params["refill_codes"])))


@decision("family-duplicate", role=Role.EXPLAIN)
def family_duplicate(run: Run, rule: Rule, d: Decision) -> bool:
    return len(d.chosen) > 1


@decision("qhp-staff", role=Role.EXPLAIN)
def qhp_staff(run: Run, rule: Rule, d: Decision) -> bool:
    """A physician/QHP code (codes.yaml requires_qhp) for clinical staff's work."""
    if len(d.chosen) != 1:
        return False
    only = run.rs.codes.get(d.chosen[0])
    return bool(only is not None and only.requires_qhp and run.visit.qhp_performed is False
                and d.expected == only.staff_code)
