"""The coding engine: `evaluate(visit, rules) -> findings`, pure, plus the app-facing facade.

    engine = CodingEngine.load(settings)          # reads rule data and CMS files once
    assessment = engine.assess(visit_resources)   # facts, then rules; no I/O

Each `check` named in rules.yaml has one evaluator here; the tables each evaluator uses are the
rule's `params` (and the CMS files). The pump-family decision (which single code of 62367-62370,
95990/95991 or 9652x fits, and why a chosen code is wrong) is made once, so a problem gives
exactly one finding; later evaluators skip codes an earlier finding already removes.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import Settings
from ..fhir.resources import VisitResources
from .cms import CmsTables, load_tables
from .codetable import CPT_SYSTEM, HCPCS_SYSTEM, CodeTable, default_code_table
from .facts import VisitReader
from .findings import Evidence, Finding, FindingKind, Severity
from .rulebook import Rule, RuleBook
from .visit import ChosenCode, PumpVisit
from .vocabulary import Vocabulary

log = logging.getLogger("pumpcds.coding")
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
PROFILES_PATH = Path(__file__).parent / "data" / "payer-profiles.yaml"
SERVICE_FAMILY = ("62367", "62368", "62369", "62370", "95990", "95991", "96521", "96522", "96523")
SELECT_ORDER = ("SEL-SYSTEMIC", "SEL-INTRAVENTRICULAR", "SEL-NONPROG", "SEL-MATRIX")


@dataclass(frozen=True)
class PayerProfile:
    name: str
    description: str
    reprogramming_parameters: frozenset[str]


@dataclass(frozen=True)
class PayerProfiles:
    profiles: Mapping[str, PayerProfile]
    payers: tuple[Mapping[str, str], ...]
    default: str

    @classmethod
    def load(cls, default: str, path: Path = PROFILES_PATH) -> PayerProfiles:
        with path.open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
        profiles = {
            name: PayerProfile(name, spec["description"], frozenset(spec["reprogramming_parameters"]))
            for name, spec in raw["profiles"].items()
        }
        if default not in profiles:
            from ..config import ConfigError

            raise ConfigError(f"default_payer_profile: unknown profile {default!r} (known: {', '.join(profiles)})")
        return cls(profiles, tuple(raw.get("payers") or ()), default)

    def for_visit(self, visit: PumpVisit) -> tuple[PayerProfile, str | None]:
        """(profile, the payer it was chosen for, or None when the default applies)."""
        for payer in self.payers:
            ident = payer.get("identifier")
            if ident and ident in visit.payer_identifiers:
                return self.profiles[payer["profile"]], payer["profile"]
            text = (payer.get("display_contains") or "").lower()
            if text and any(text in n.lower() for n in visit.payer_names):
                return self.profiles[payer["profile"]], payer["profile"]
        return self.profiles[self.default], None


@dataclass(frozen=True)
class RuleSet:
    """Everything `evaluate` needs besides the visit: rule data, code table, CMS tables, payer profiles."""

    book: RuleBook
    codes: CodeTable
    cms: CmsTables
    payers: PayerProfiles
    prompts: frozenset[str] = frozenset()  # good-practice elements the site puts on cards too


@dataclass
class _Run:
    visit: PumpVisit
    rules: dict[str, Rule]
    rs: RuleSet
    profile: PayerProfile
    findings: list[Finding] = field(default_factory=list)
    final_code: str | None = None  # the pump service code this visit ends up with

    def removed(self) -> set[str]:
        return {c for f in self.findings for c in f.replaces}

    def claimed_elements(self) -> set[str]:
        return {m for f in self.findings for m in f.missing}

    def params(self, **extra: str | None) -> dict[str, str]:
        v = self.visit
        base: dict[str, str | None] = {
            "date_of_service": v.date_of_service.isoformat(),
            "pump": v.pump.describe(),
            "activities": v.describe_activities(),
            "performer": _describe_performers(v),
            "performer_reference": next((p.reference for p in v.main_performers), None),
            "encounter_reference": v.encounter_reference,
            "patient_reference": v.patient_reference,
            "changed_parameters": "; ".join(c.describe() for c in v.changes) or None,
            "payer": v.payer_names[0] if v.payer_names else None,
            "payer_profile": self.profile.name,
        }
        base.update(extra)
        return {k: str(val) for k, val in base.items() if val not in (None, "")}


def _describe_performers(v: PumpVisit) -> str | None:
    main = v.main_performers
    if not main:
        return None
    return ", ".join(dict.fromkeys(p.describe() for p in main))


def _finding(run: _Run, rule: Rule, kind: FindingKind, *, severity: Severity | None = None,
             code: str | None = None, code_system: str | None = None, replaces: Iterable[str] = (),
             modifiers: Iterable[str] = (), units: int | None = None, affected: Iterable[str] = (),
             evidence: Iterable[Evidence] = (), missing: Iterable[str] = (), **params: str | None) -> Finding:
    if code and code_system is None:
        code_system = HCPCS_SYSTEM if code[:1].isalpha() else CPT_SYSTEM
    return Finding(
        kind=kind, severity=severity or rule.severity, rule=rule.ref, code=code, code_system=code_system,
        replaces=tuple(dict.fromkeys(replaces)), modifiers=tuple(modifiers), units=units,
        affected=tuple(dict.fromkeys(affected)), evidence=tuple(dict.fromkeys(evidence)),
        missing=tuple(missing), params=run.params(**params),
    )


# -- the pump-family decision ----------------------------------------------------------------

def _facts_view(run: _Run) -> dict[str, Any]:
    """The facts the selection tables read; a fact whose data could not be had and that the
    record does not show positively is None (matches either way), never the cheaper answer."""
    v = run.visit
    view = _known_view(run)
    for fact in v.undecided:
        if fact in ("reprogrammed", "refilled") and view[fact] is False:
            view[fact] = None  # not shown is not "not done" when the data could not be read
    return view


def _known_view(run: _Run) -> dict[str, Any]:
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


def _matches(when: Mapping[str, Any], view: Mapping[str, Any]) -> bool:
    for key, wanted in when.items():
        fact = view.get(key)
        if isinstance(wanted, list):
            if key == "target" and fact == "spinal" and ({"intrathecal", "epidural"} & set(wanted)):
                continue
            if fact not in wanted:
                return False
        elif fact is not None and fact != wanted:
            return False  # an unknown fact (None) matches either way; the chosen code breaks ties
    return True


def _select(run: _Run) -> tuple[Rule | None, str | None]:
    view = _facts_view(run)
    if view["pump_kind"] == "unknown" and view["target"] in {"intravenous", "intra-arterial"}:
        view["systemic"] = True
    chosen = {c.code for c in run.visit.codes}
    for rule_id in SELECT_ORDER:
        rule = run.rules.get(rule_id)
        if rule is None:
            continue
        applies = dict(rule.params.get("applies_when", {}))
        if "pump_kind" in applies and view["pump_kind"] == "unknown":
            applies["pump_kind"] = [*applies["pump_kind"], "unknown"] if rule_id == "SEL-MATRIX" else applies["pump_kind"]
        if not _matches(applies, view):
            continue
        rows = [r for r in rule.params.get("rows", ()) if _matches(r.get("when", {}), view)]
        if not rows:
            return rule, None, []
        candidates = list(dict.fromkeys(r.get("code") for r in rows))
        for row in rows:
            if row.get("code") in chosen:
                return rule, row["code"], candidates
        return rule, rows[0].get("code"), candidates
    return None, None, []


def _deciding(run: _Run, rule: Rule, candidates: list[Any]) -> list[str]:
    """The undecided facts on which the candidate rows differ."""
    rows = [r for r in rule.params.get("rows", ()) if r.get("code") in candidates]
    out = []
    for fact in run.visit.undecided:
        values = {r.get("when", {}).get(fact) for r in rows}
        if len(values) > 1:
            out.append(fact)
    return out


def _undecided(run: _Run, rule: Rule, candidates: list[Any], chosen_codes: list[str],
               carriers: dict[str, tuple[str, ...]]) -> bool:
    """When a fact that decides between codes could not be read: name the candidates and the fact;
    never take the lower code (nor let a chosen code stand) as if the fact were known."""
    codes = [c for c in candidates if c]
    deciding = _deciding(run, rule, candidates)
    if len(codes) < 2 or not deciding:
        return False
    run.final_code = None  # even a chosen code among the candidates may be the wrong one
    undecided_rule = run.rules.get("SEL-UNDECIDED")
    if undecided_rule is None:
        return True
    from .unknowns import FACT_WORDS

    v = run.visit
    run.findings.append(_finding(
        run, undecided_rule, FindingKind.WARNING, severity=undecided_rule.severity,
        affected=[r for c in chosen_codes for r in carriers.get(c, ())],
        evidence=v.evidence_for("pump", "target", "electronic-analysis", "reprogramming", "refill", "performer"),
        candidates=" or ".join(codes), chosen=", ".join(chosen_codes) or None,
        deciding="; ".join(FACT_WORDS.get(f, f) for f in deciding),
        unknown_because="; ".join(dict.fromkeys(v.undecided[f] for f in deciding)),
        selection_rule=rule.id,
    ))
    return True


def _pump_family(run: _Run) -> None:
    v = run.visit
    chosen = [c for c in v.codes if c.code in SERVICE_FAMILY]
    chosen_codes = list(dict.fromkeys(c.code for c in chosen))
    carriers = {c.code: c.carriers for c in chosen}
    implant_rule = run.rules.get("BUN-IMPLANT-62362")
    if v.same_session_implant and implant_rule is not None:
        if chosen_codes:
            run.findings.append(_finding(
                run, implant_rule, FindingKind.DROP_CODE, code="62362", replaces=chosen_codes,
                affected=[r for c in chosen_codes for r in carriers[c]],
                evidence=v.evidence_for("code:62362", *(f"code:{c}" for c in chosen_codes)),
                reason="the pump was implanted at this session; its programming is part of 62362",
            ))
        run.final_code = None
        return
    if v.activity_source == "none" and not chosen_codes:
        return
    rule, expected, candidates = _select(run)
    run.final_code = expected
    if rule is None:
        return
    if run.visit.undecided and _undecided(run, rule, candidates, chosen_codes, carriers):
        return
    evidence = v.evidence_for("pump", "target", "analysis", "electronic-analysis", "reprogramming", "refill",
                              "activities", "performer", *(f"code:{c}" for c in chosen_codes))
    if not chosen_codes:
        if expected is not None:
            run.findings.append(_finding(run, rule, FindingKind.RECOMMENDED_CODE, severity=Severity.INFO,
                                         code=expected, evidence=evidence, reason=_why(run, expected)))
        return
    if chosen_codes == [expected]:
        return
    analysis = [c for c in chosen_codes if c in run.rules.get("BUN-ANALYSIS-REFILL", rule).params.get("analysis_codes", ())]
    refill = [c for c in chosen_codes if c in ("95990", "95991")]
    responsible = rule
    if len(chosen_codes) > 1:
        if analysis and refill and "BUN-ANALYSIS-REFILL" in run.rules:
            responsible = run.rules["BUN-ANALYSIS-REFILL"]
        elif "BUN-FAMILY-DUP" in run.rules:
            responsible = run.rules["BUN-FAMILY-DUP"]
    else:
        only = run.rs.codes.get(chosen_codes[0])
        counted = run.profile.reprogramming_parameters
        only_uncounted_changes = bool(v.changes) and not any(c.parameter in counted for c in v.changes)
        if (only is not None and only.reprogrammed and only_uncounted_changes
                and "PAYER-REPROG" in run.rules and expected in ("95990", "95991")):
            responsible = run.rules["PAYER-REPROG"]
        elif (only is not None and only.requires_qhp and v.qhp_performed is False
              and expected == only.staff_code and "PERF-QHP-STAFF" in run.rules):
            responsible = run.rules["PERF-QHP-STAFF"]
    wrong = [c for c in chosen_codes if c != expected]
    kind = FindingKind.REPLACE_CODE if expected is not None and expected not in chosen_codes else FindingKind.DROP_CODE
    if rule.id == "SEL-NONPROG" and responsible is not rule:
        _not_programmable(run, rule, [c for c in wrong if c in analysis], carriers, evidence, expected)
    run.findings.append(_finding(
        run, responsible, kind, code=expected, replaces=wrong,
        affected=[r for c in wrong for r in carriers[c]], evidence=evidence,
        pair=" + ".join(chosen_codes) if len(chosen_codes) > 1 else None,
        reason=_why(run, expected, wrong),
    ))


def _not_programmable(run: _Run, rule: Rule, codes: list[str], carriers: Mapping[str, tuple[str, ...]],
                      evidence: tuple[Evidence, ...], expected: str | None) -> None:
    """62367-62370 on a pump that cannot be programmed is wrong in itself, whatever else is (bundling)."""
    if codes:
        run.findings.append(_finding(run, rule, FindingKind.DROP_CODE, code=expected if expected not in codes else None,
                                     replaces=codes, affected=[r for c in codes for r in carriers[c]],
                                     evidence=evidence, reason=_why(run, expected, codes)))


def _why(run: _Run, expected: str | None, wrong: list[str] | None = None) -> str:
    """Plain facts behind the decision, for the card (wording of the decision itself is in cards/)."""
    v = run.visit
    parts = [v.pump.describe(), v.describe_activities()]
    performer = _describe_performers(v)
    if performer:
        parts.append(f"by {performer}")
    if v.changes and not v.reprogrammed(run.profile.reprogramming_parameters):
        parts.append("only " + ", ".join(c.parameter.replace("-", " ") for c in v.changes)
                     + f" changed, not reprogramming under the {run.profile.name} payer profile")
    if v.activity_source == "chosen-code":
        parts.append("activities taken from the chosen codes")
    return "; ".join(p for p in parts if p)


# -- the other evaluators ---------------------------------------------------------------------

def _select_check(run: _Run, rule: Rule) -> None:
    """SEL-* rules act through the pump-family decision."""


def _qhp_reason(run: _Run, rule: Rule) -> None:
    v = run.visit
    if run.final_code not in rule.params.get("codes", ()) or v.qhp_reasons:
        return
    if "doc-qhp-skill-reason" in v.documented:
        return
    run.findings.append(_finding(run, rule, FindingKind.MISSING_DOCUMENTATION, code=run.final_code,
                                 missing=["doc-qhp-skill-reason"], evidence=v.evidence_for("performer")))


def _incident_to(run: _Run, rule: Rule) -> None:
    v = run.visit
    if run.final_code not in rule.params.get("codes", ()) or v.qhp_performed is not False:
        return
    if v.supervisor is not None and v.supervisor.role == "physician":
        return
    medicare = [t.lower() for t in rule.params.get("payers_medicare_text", ())]
    if not any(m in n.lower() for n in v.payer_names for m in medicare):
        return
    run.findings.append(_finding(run, rule, FindingKind.WARNING, code=run.final_code,
                                 missing=["doc-supervising-physician"],
                                 evidence=v.evidence_for("performer", "payer")))


def _documentation(run: _Run, rule: Rule) -> None:
    v = run.visit
    code = run.final_code
    if code is None or v.activity_source == "none" and not v.codes:
        return
    checklist = [c.code for c in run.rs.codes.checklist(code)]
    skip = run.claimed_elements() | {"doc-qhp-skill-reason"}
    view = _facts_view(run)
    skip |= {n["element"] for n in rule.params.get("not_applicable", ()) if _matches(n.get("when", {}), view)}
    if v.qhp_performed is not False:
        skip.add("doc-supervising-physician")
    table = run.rs.codes
    # alert policy (codes.yaml documentation_policy): a card only for what the code requires,
    # or what this site asked to be prompted for; the rest is on the code's help page
    missing = [e for e in checklist if e not in v.documented and e not in skip
               and (table.required(code, e) or e in run.rs.prompts)]
    if missing:
        evidence = v.evidence_for("signature") if "doc-performer-signature" in missing else ()
        run.findings.append(_finding(run, rule, FindingKind.MISSING_DOCUMENTATION, code=code, missing=missing,
                                     evidence=evidence))


def _billed(run: _Run) -> list[ChosenCode]:
    removed = run.removed()
    return [c for c in run.visit.codes if c.billed and c.system in ("cpt", "hcpcs") and c.code not in removed]


def _test_data(table: Any) -> dict[str, str]:
    """`test_data` param on a finding that rests on a bundled synthetic CMS table (not a CMS
    release): its card must say so and never call itself verified."""
    source = getattr(table, "source", None)
    return {"test_data": source.kind} if source is not None and source.synthetic else {}


def _ncci_ptp(run: _Run, rule: Rule) -> None:
    billed = {c.code: c for c in _billed(run)}
    if len(billed) < 2:
        return
    bypass = set(rule.params.get("bypass_modifiers", ()))
    for edit in run.rs.cms.ptp.edits_for(billed.keys(), run.visit.date_of_service):
        removed = run.removed()
        if edit.column1 in removed or edit.column2 in removed:
            continue
        col1, col2 = billed[edit.column1], billed[edit.column2]
        common = dict(column1=edit.column1, column2=edit.column2, modifier_indicator=edit.modifier_indicator,
                      file_release=run.rs.cms.ptp.source.release if run.rs.cms.ptp.source else None,
                      **_test_data(run.rs.cms.ptp))
        evidence = run.visit.evidence_for(f"code:{edit.column1}", f"code:{edit.column2}")
        if edit.modifier_indicator == "0":
            run.findings.append(_finding(run, rule, FindingKind.DROP_CODE, code=edit.column1, replaces=[edit.column2],
                                         affected=col2.carriers, evidence=evidence, **common))
        elif edit.modifier_indicator == "1" and not (bypass & set(col1.modifiers + col2.modifiers)):
            run.findings.append(_finding(run, rule, FindingKind.WARNING, severity=Severity.WARNING,
                                         code=edit.column2, affected=col2.carriers, evidence=evidence,
                                         modifiers=[str(rule.params.get("suggested_modifier", "XU"))],
                                         action="drop-or-add-modifier",
                                         bypass_modifiers=", ".join(sorted(bypass)), **common))


def _ncci_mue(run: _Run, rule: Rule) -> None:
    fallback = {str(k): int(v) for k, v in rule.params.get("fallback", {}).items()}
    for c in _billed(run):
        limit = run.rs.cms.mue.limit(c.code)
        value, mai = (limit.value, limit.mai) if limit is not None else (fallback.get(c.code), None)
        if value is None or c.units <= value:
            continue
        run.findings.append(_finding(run, rule, FindingKind.REPLACE_CODE, code=c.code, replaces=[c.code],
                                     units=value, affected=c.carriers, evidence=run.visit.evidence_for(f"code:{c.code}"),
                                     billed_units=str(c.units), mue=str(value), mai=mai,
                                     **(_test_data(run.rs.cms.mue) if limit is not None else {})))


def _modifier_indicators(run: _Run, rule: Rule) -> None:
    for c in _billed(run):
        if not c.modifiers:
            continue
        for modifier, name, value in run.rs.cms.mpfs.disallowed_modifiers(c.code, c.modifiers):
            run.findings.append(_finding(run, rule, FindingKind.WARNING, severity=rule.severity, code=c.code,
                                         modifiers=[modifier], affected=c.carriers,
                                         evidence=run.visit.evidence_for(f"code:{c.code}"),
                                         indicator=name, indicator_value=value, action="remove-modifier",
                                         **_test_data(run.rs.cms.mpfs)))


def _em_same_day(run: _Run, rule: Rule) -> None:
    v = run.visit
    pump_service = run.final_code is not None or any(c.code in SERVICE_FAMILY for c in v.codes)
    if not pump_service:
        return
    modifier = rule.params.get("modifier", "25")
    pump_care = {d.upper() for d in rule.params.get("pump_care_diagnoses", ())}
    if rule.params.get("pump_line_diagnoses_are_pump_care"):
        pump_care |= {r.upper() for c in v.codes if c.code in SERVICE_FAMILY for r in c.reasons}
    for c in v.codes_in(rule.params.get("em_codes", ())):
        separate = v.separate_problem or any(r.upper() not in pump_care for r in c.reasons)
        evidence = v.evidence_for(f"code:{c.code}")
        if modifier in c.modifiers:
            if not separate:  # the alternative to removing it: document the separate problem
                run.findings.append(_finding(run, rule, FindingKind.DROP_CODE, replaces=[c.code], affected=c.carriers,
                                             missing=["doc-separate-problem"], evidence=evidence))
            continue
        if separate:
            run.findings.append(_finding(run, rule, FindingKind.REPLACE_CODE, code=c.code, replaces=[c.code],
                                         modifiers=[*c.modifiers, modifier], affected=c.carriers, evidence=evidence))
        else:
            run.findings.append(_finding(run, rule, FindingKind.DROP_CODE, replaces=[c.code], affected=c.carriers,
                                         evidence=evidence))


def _amount(billing_units: float, unit: str) -> str:
    """2.5 billing units of '10 mg' -> '25 mg'; units spelled out on the card (cards.words)."""
    number, _, name = unit.partition(" ")
    try:
        return f"{billing_units * float(number):g} {name}".strip()
    except ValueError:
        return f"{billing_units:g} x {unit}"


def _drug_units(amount: float | None) -> int | None:
    return None if amount is None else max(1, math.ceil(round(amount, 6)))


def _drug_line(run: _Run, rule: Rule) -> None:
    drug = run.visit.drug
    if drug is None or drug.supplied_by_practice is False:
        return
    lines = [c for c in run.visit.codes if c.system == "hcpcs" and c.code[:1] == "J"]
    if not lines and drug.supplied_by_practice is not True:
        return
    units = _drug_units(drug.amount)
    evidence = run.visit.evidence_for("drug")
    common = dict(drug=drug.name, amount=_amount(drug.amount, drug.unit) if drug.amount is not None else None)
    if not lines:
        run.findings.append(_finding(run, rule, FindingKind.RECOMMENDED_CODE, code=drug.hcpcs, units=units,
                                     evidence=evidence, **common))
        return
    for line in lines:
        if line.code != drug.hcpcs:
            run.findings.append(_finding(run, rule, FindingKind.REPLACE_CODE, severity=Severity.WARNING,
                                         code=drug.hcpcs, replaces=[line.code], units=units,
                                         affected=line.carriers, evidence=evidence, **common))
        elif units is not None and "JW" not in line.modifiers and line.units != units:
            run.findings.append(_finding(run, rule, FindingKind.REPLACE_CODE, severity=Severity.WARNING,
                                         code=drug.hcpcs, replaces=[line.code], units=units, modifiers=line.modifiers,
                                         affected=line.carriers, evidence=evidence, billed_units=str(line.units), **common))


def _drug_waste(run: _Run, rule: Rule) -> None:
    v = run.visit
    drug = v.drug
    if drug is None or drug.single_dose_container is not True or drug.supplied_by_practice is False:
        return
    lines = [c for c in v.codes if c.code == drug.hcpcs]
    if not lines and drug.supplied_by_practice is not True:
        return
    day = v.date_of_service
    jz_from = _date(rule.params.get("jz_from"))
    evidence = v.evidence_for("drug", "waste")
    mods = {m for c in lines for m in c.modifiers}
    if drug.wasted is None:
        run.findings.append(_finding(run, rule, FindingKind.MISSING_DOCUMENTATION, severity=Severity.INFO,
                                     code=drug.hcpcs, missing=["doc-waste-amount"], evidence=evidence, drug=drug.name))
        return
    if drug.wasted <= 0:
        if jz_from is not None and day >= jz_from and "JZ" not in mods:
            run.findings.append(_finding(run, rule, FindingKind.WARNING, code=drug.hcpcs, modifiers=["JZ"],
                                         affected=[r for c in lines for r in c.carriers], evidence=evidence,
                                         drug=drug.name, waste="none", action="add-modifier"))
        return
    used = _drug_units(drug.amount) or 0
    total = _drug_units((drug.amount or 0) + drug.wasted) or 0
    waste_units = total - used
    if waste_units > 0 and "JW" not in mods:
        run.findings.append(_finding(run, rule, FindingKind.WARNING, code=drug.hcpcs, modifiers=["JW"],
                                     units=waste_units, evidence=evidence, drug=drug.name,
                                     waste=_amount(drug.wasted, drug.unit), action="add-line"))


def _diagnosis_header(run: _Run, rule: Rule) -> None:
    headers = {str(k): str(v) for k, v in rule.params.get("headers", {}).items()}
    for code, _ in dict.fromkeys(run.visit.diagnoses):
        if code.upper() in headers:
            run.findings.append(_finding(run, rule, FindingKind.REPLACE_CODE, code_system=ICD10_SYSTEM,
                                         replaces=[code.upper()], evidence=run.visit.evidence_for(f"diagnosis:{code}"),
                                         reason=headers[code.upper()]))
            return


def _data_quality(run: _Run, rule: Rule) -> None:
    """One data card, in a clinician's words (what could not be read, why, what to do); the
    technical detail (resource ids, validator messages) stays in `input_problems` for the logs."""
    v = run.visit
    pump_visit = v.activity_source != "none" or v.drug is not None or any(
        c.code in SERVICE_FAMILY or c.code == "62362" for c in v.codes)
    if v.unreadable and pump_visit:  # on anything else (a pump patient's other orders) it is noise
        evidence = [Evidence("", f"{what[:1].upper() + what[1:]}: {why}") for what, why in v.unreadable]
        run.findings.append(_finding(run, rule, FindingKind.DATA_QUALITY, evidence=evidence))


def _payer_reprogramming(run: _Run, rule: Rule) -> None:
    """Acts through the pump-family decision (it names the rule when the payer profile decides)."""


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    return None


Evaluator = Callable[[_Run, Rule], None]
EVALUATORS: dict[str, Evaluator] = {
    "select": _select_check,
    "payer-reprogramming": _payer_reprogramming,
    "pump-family": lambda run, rule: None,  # run once, before the others (see evaluate)
    "qhp-reason": _qhp_reason,
    "incident-to": _incident_to,
    "em-same-day": _em_same_day,
    "ncci-ptp": _ncci_ptp,
    "ncci-mue": _ncci_mue,
    "modifier-indicators": _modifier_indicators,
    "drug-line": _drug_line,
    "drug-waste": _drug_waste,
    "diagnosis-header": _diagnosis_header,
    "documentation": _documentation,
    "data-quality": _data_quality,
}
# documentation last: it leaves out elements other findings already ask for
ORDER = ("qhp-reason", "incident-to", "em-same-day", "ncci-ptp", "ncci-mue", "modifier-indicators",
         "drug-line", "drug-waste", "diagnosis-header", "documentation", "data-quality")


def evaluate(visit: PumpVisit, rules: RuleSet) -> list[Finding]:
    """All findings for one visit, most important first. Pure: same visit and rules, same findings."""
    in_force = rules.book.in_force(visit.date_of_service)
    profile, _ = rules.payers.for_visit(visit)
    run = _Run(visit, in_force, rules, profile)
    _pump_family(run)
    for check in ORDER:
        for rule in in_force.values():
            if rule.check == check:
                EVALUATORS[check](run, rule)
    return sorted(run.findings, key=lambda f: f.sort_key)


@dataclass
class Assessment:
    findings: list[Finding]
    visit: PumpVisit | None = None
    rule_ids: list[str] = field(default_factory=list)


def _site_prompts(settings: Settings, codes: CodeTable) -> frozenset[str]:
    unknown = [e for e in settings.documentation_prompts if e not in codes.policy]
    if unknown:
        from ..config import ConfigError

        raise ConfigError(f"documentation_prompts: unknown documentation element(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(codes.policy))})")
    return frozenset(settings.documentation_prompts)


class CodingEngine:
    """Loads rule data, code tables, vocabulary and CMS files once; assesses visits without I/O."""

    def __init__(self, rules: RuleSet, reader: VisitReader) -> None:
        self.rules = rules
        self.reader = reader

    @classmethod
    def load(cls, settings: Settings) -> CodingEngine:
        book = RuleBook.load(base_url=settings.public_base_url)
        codes = default_code_table().with_descriptors(settings.cpt_descriptor_path)
        rules = RuleSet(book, codes, load_tables(settings), PayerProfiles.load(settings.default_payer_profile),
                        _site_prompts(settings, codes))
        reader = VisitReader(Vocabulary.load(settings.site_mapping_path), codes)
        return cls(rules, reader)

    def assess(self, resources: VisitResources) -> Assessment:
        visit = self.reader.read(resources)
        findings = evaluate(visit, self.rules)
        log.debug("assessed visit: rules=%s", ",".join(f.rule.id for f in findings))
        return Assessment(findings=findings, visit=visit, rule_ids=sorted({f.rule.id for f in findings}))

