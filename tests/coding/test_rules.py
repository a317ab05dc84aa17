"""One test (or a few) per rule, on hand-written visits: the rule data decides, the engine obeys."""
from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from service.coding.engine import PayerProfiles, RuleSet, evaluate
from service.coding.findings import Finding, FindingKind, Severity
from service.coding.visit import Pump

from .visits import DOSE_UP, ISOMED, MD, PA, RN, SUPERVISOR, SYNCHROMED, VOLUME, chosen, drug, visit


def by_rule(findings: list[Finding], rule_id: str) -> list[Finding]:
    return [f for f in findings if f.rule.id == rule_id]


def only(findings: list[Finding], rule_id: str) -> Finding:
    found = by_rule(findings, rule_id)
    assert len(found) == 1, f"expected one {rule_id} finding, got {[(f.rule.id, f.code) for f in findings]}"
    return found[0]


PUMP_RULES = {"SEL-MATRIX", "SEL-NONPROG", "SEL-INTRAVENTRICULAR", "SEL-SYSTEMIC", "PAYER-REPROG",
              "PERF-QHP-STAFF", "BUN-ANALYSIS-REFILL", "BUN-FAMILY-DUP", "BUN-IMPLANT-62362"}


def pump_findings(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.rule.id in PUMP_RULES]


# -- code selection matrix (R1-R6) --------------------------------------------------------------
@pytest.mark.parametrize(
    "changes, refilled, performer, expected",
    [
        ((), False, PA, "62367"),
        ((DOSE_UP,), False, MD, "62368"),
        ((DOSE_UP,), True, RN, "62369"),
        ((DOSE_UP,), True, MD, "62370"),
        ((), True, RN, "95990"),
        ((), True, MD, "95991"),
    ],
)
def test_matrix_recommends_the_code_when_none_was_chosen(ruleset: RuleSet, changes, refilled, performer, expected) -> None:
    v = visit(changes=changes, refilled=refilled, performers=(performer, SUPERVISOR) if performer is RN else (performer,),
              qhp_reasons=("complex-reprogramming",))
    f = only(evaluate(v, ruleset), "SEL-MATRIX")
    assert (f.kind, f.code, f.severity) == (FindingKind.RECOMMENDED_CODE, expected, Severity.INFO)


@pytest.mark.parametrize("code", ["62367", "62368", "62369", "62370", "95990", "95991"])
def test_matrix_is_silent_when_the_chosen_code_fits(ruleset: RuleSet, code: str) -> None:
    facts = {
        "62367": dict(changes=(), refilled=False, performers=(PA,)),
        "62368": dict(changes=(DOSE_UP,), refilled=False, performers=(MD,)),
        "62369": dict(changes=(DOSE_UP,), refilled=True, performers=(RN, SUPERVISOR)),
        "62370": dict(changes=(DOSE_UP,), refilled=True, performers=(MD,), qhp_reasons=("difficult-access",)),
        "95990": dict(changes=(), refilled=True, performers=(RN, SUPERVISOR)),
        "95991": dict(changes=(), refilled=True, performers=(MD,), qhp_reasons=("difficult-access",)),
    }[code]
    findings = evaluate(visit(codes=(chosen(code),), **facts), ruleset)
    assert findings == [], [(f.rule.id, f.code, f.missing) for f in findings]


def test_matrix_replaces_a_code_that_does_not_fit_the_activities(ruleset: RuleSet) -> None:
    v = visit(changes=(), refilled=False, performers=(PA,), codes=(chosen("62368"),))
    f = only(evaluate(v, ruleset), "SEL-MATRIX")
    assert (f.kind, f.code, f.replaces, f.affected) == (FindingKind.REPLACE_CODE, "62367", ("62368",), ("ServiceRequest/sr-62368",))
    assert f.severity is Severity.WARNING


def test_unknown_performer_keeps_the_chosen_qhp_or_staff_code(ruleset: RuleSet) -> None:
    unknown = replace(RN, role=None, credential=None)
    for code in ("62369", "62370"):
        v = visit(changes=(DOSE_UP,), refilled=True, performers=(unknown,), codes=(chosen(code),),
                  qhp_reasons=("difficult-access",))
        assert pump_findings(evaluate(v, ruleset)) == []


# -- pump kinds and targets (R7-R9) -------------------------------------------------------------
def test_nonprogrammable_pump_refill_is_95990_never_62369(ruleset: RuleSet) -> None:
    v = visit(pump=ISOMED, refilled=True, performers=(RN, SUPERVISOR), codes=(chosen("62369"),))
    f = only(evaluate(v, ruleset), "SEL-NONPROG")
    assert (f.kind, f.code, f.replaces, f.severity) == (FindingKind.REPLACE_CODE, "95990", ("62369",), Severity.CRITICAL)


def test_nonprogrammable_pump_analysis_alone_has_no_pump_code(ruleset: RuleSet) -> None:
    v = visit(pump=ISOMED, refilled=False, codes=(chosen("62367"),))
    f = only(evaluate(v, ruleset), "SEL-NONPROG")
    assert (f.kind, f.code, f.replaces) == (FindingKind.DROP_CODE, None, ("62367",))


def test_reservoir_in_the_brain_ventricles_takes_95990(ruleset: RuleSet) -> None:
    ommaya = Pump("subcutaneous-reservoir", "intraventricular", "Ommaya", None, "Device/r", True)
    v = visit(pump=ommaya, refilled=True, performers=(RN, SUPERVISOR), codes=(chosen("62369"),))
    f = only(evaluate(v, ruleset), "SEL-INTRAVENTRICULAR")
    assert (f.code, f.replaces) == ("95990", ("62369",))


@pytest.mark.parametrize(
    "kind, target, expected",
    [("programmable-pump", "intra-arterial", "96522"), ("external-pump", None, "96521"),
     ("venous-access-port", "intravenous", "96523")],
)
def test_systemic_pumps_leave_the_spinal_family(ruleset: RuleSet, kind: str, target: str | None, expected: str) -> None:
    v = visit(pump=Pump(kind, target, None, None, "Device/p", True), refilled=kind != "venous-access-port",
              codes=(chosen("95990"),))
    f = only(evaluate(v, ruleset), "SEL-SYSTEMIC")
    assert (f.kind, f.code, f.replaces, f.severity) == (FindingKind.REPLACE_CODE, expected, ("95990",), Severity.CRITICAL)


# -- payer profile for reprogramming (R14) ---------------------------------------------------------
def test_reservoir_volume_update_alone_is_not_reprogramming_by_default(ruleset: RuleSet) -> None:
    v = visit(changes=(VOLUME,), refilled=True, performers=(RN, SUPERVISOR), codes=(chosen("62369"),))
    f = only(evaluate(v, ruleset), "PAYER-REPROG")
    assert (f.kind, f.code, f.replaces, f.severity) == (FindingKind.REPLACE_CODE, "95990", ("62369",), Severity.WARNING)
    assert f.params["payer_profile"] == "conservative"
    assert "reservoir volume" in f.params["changed_parameters"]


def test_the_any_parameter_payer_counts_a_reservoir_volume_update(ruleset: RuleSet) -> None:
    v = visit(changes=(VOLUME,), refilled=True, performers=(RN, SUPERVISOR), codes=(chosen("62369"),),
              payer_identifiers=("http://pumpcds.org/fhir/sid/payer|example-any-parameter",))
    assert pump_findings(evaluate(v, ruleset)) == []


def test_default_profile_comes_from_settings(ruleset: RuleSet) -> None:
    lenient = replace(ruleset, payers=PayerProfiles.load("any-parameter"))
    v = visit(changes=(VOLUME,), refilled=True, performers=(RN, SUPERVISOR), codes=(chosen("62369"),))
    assert pump_findings(evaluate(v, lenient)) == []


# -- bundling (R10-R12) ---------------------------------------------------------------------------
def test_analysis_code_with_refill_code_becomes_the_single_right_code(ruleset: RuleSet) -> None:
    v = visit(activity_source="chosen-code", refilled=True, reprogramming_recorded=True, changes=(),
              performers=(RN, SUPERVISOR), codes=(chosen("62368"), chosen("95990")))
    findings = evaluate(v, ruleset)
    f = only(findings, "BUN-ANALYSIS-REFILL")
    assert (f.kind, f.code, set(f.replaces), f.severity) == (FindingKind.REPLACE_CODE, "62369", {"62368", "95990"}, Severity.CRITICAL)
    assert len(pump_findings(findings)) == 1
    assert by_rule(findings, "NCCI-PTP") == []  # the same problem is not reported twice


def test_62369_with_95990_keeps_62369_when_reprogrammed(ruleset: RuleSet) -> None:
    v = visit(changes=(DOSE_UP,), refilled=True, performers=(RN, SUPERVISOR), codes=(chosen("62369"), chosen("95990")))
    f = only(evaluate(v, ruleset), "BUN-ANALYSIS-REFILL")
    assert (f.kind, f.code, f.replaces) == (FindingKind.DROP_CODE, "62369", ("95990",))


def test_family_duplicate_keeps_the_higher_service(ruleset: RuleSet) -> None:
    v = visit(changes=(DOSE_UP,), refilled=False, codes=(chosen("62367"), chosen("62368")))
    f = only(evaluate(v, ruleset), "BUN-FAMILY-DUP")
    assert (f.kind, f.code, f.replaces) == (FindingKind.DROP_CODE, "62368", ("62367",))


def test_programming_at_the_implant_session_is_part_of_62362(ruleset: RuleSet) -> None:
    v = visit(changes=(DOSE_UP,), codes=(chosen("62362"), chosen("62368")))
    findings = evaluate(v, ruleset)
    f = only(findings, "BUN-IMPLANT-62362")
    assert (f.kind, f.code, f.replaces) == (FindingKind.DROP_CODE, "62362", ("62368",))
    assert by_rule(findings, "DOC-CHECKLIST") == []


# -- performer (R13, R4, R3) ----------------------------------------------------------------------
def test_62370_by_a_nurse_becomes_62369(ruleset: RuleSet) -> None:
    v = visit(changes=(DOSE_UP,), refilled=True, performers=(RN, SUPERVISOR), codes=(chosen("62370"),))
    f = only(evaluate(v, ruleset), "PERF-QHP-STAFF")
    assert (f.kind, f.code, f.replaces, f.severity) == (FindingKind.REPLACE_CODE, "62369", ("62370",), Severity.CRITICAL)


def test_95991_by_a_nurse_becomes_95990(ruleset: RuleSet) -> None:
    v = visit(refilled=True, performers=(RN, SUPERVISOR), codes=(chosen("95991"),))
    assert only(evaluate(v, ruleset), "PERF-QHP-STAFF").code == "95990"


def test_physician_skill_reason_is_asked_for(ruleset: RuleSet) -> None:
    v = visit(changes=(DOSE_UP,), refilled=True, performers=(MD,), codes=(chosen("62370"),),
              documented=visit().documented - {"doc-qhp-skill-reason"})
    f = only(evaluate(v, ruleset), "PERF-QHP-REASON")
    assert (f.kind, f.code, f.missing) == (FindingKind.MISSING_DOCUMENTATION, "62370", ("doc-qhp-skill-reason",))


def test_incident_to_needs_a_supervising_physician_for_medicare(ruleset: RuleSet) -> None:
    v = visit(changes=(DOSE_UP,), refilled=True, performers=(RN,), codes=(chosen("62369"),),
              payer_names=("Medicare Part B",))
    findings = evaluate(v, ruleset)
    f = only(findings, "PERF-INCIDENT-TO")
    assert f.missing == ("doc-supervising-physician",)
    assert all("doc-supervising-physician" not in x.missing for x in by_rule(findings, "DOC-CHECKLIST"))
    assert by_rule(evaluate(replace(v, payer_names=("Example Health Plan",)), ruleset), "PERF-INCIDENT-TO") == []


# -- same-day E/M (R15) -----------------------------------------------------------------------------
def test_em_without_a_separate_problem_is_dropped(ruleset: RuleSet) -> None:
    v = visit(codes=(chosen("62367"), chosen("99213", reasons=("Z45.1",))))
    f = only(evaluate(v, ruleset), "EM-SAME-DAY")
    assert (f.kind, f.replaces) == (FindingKind.DROP_CODE, ("99213",))


def test_em_for_a_separate_problem_needs_modifier_25(ruleset: RuleSet) -> None:
    v = visit(codes=(chosen("62367"), chosen("99214", reasons=("M54.50",))))
    findings = evaluate(v, ruleset)
    f = only(findings, "EM-SAME-DAY")
    assert (f.kind, f.code, f.modifiers) == (FindingKind.REPLACE_CODE, "99214", ("25",))


def test_em_with_25_and_a_separate_problem_is_fine(ruleset: RuleSet) -> None:
    v = visit(codes=(chosen("62367"), chosen("99214", modifiers=("25",), reasons=("M54.50",))))
    assert by_rule(evaluate(v, ruleset), "EM-SAME-DAY") == []


def test_em_for_the_pumps_own_indication_is_not_a_separate_problem(ruleset: RuleSet) -> None:
    """CPT Assistant 2012 scenario 3: the pump line's diagnoses on the E/M are the same problem."""
    pump_line = chosen("62370", reasons=("G89.29",))
    v = visit(codes=(pump_line, chosen("99213", modifiers=("25",), reasons=("G89.29",))))
    f = only(evaluate(v, ruleset), "EM-SAME-DAY")
    assert (f.kind, f.missing) == (FindingKind.DROP_CODE, ("doc-separate-problem",))
    v = visit(codes=(pump_line, chosen("99213", modifiers=("25",), reasons=("G89.29", "J45.909"))))
    assert by_rule(evaluate(v, ruleset), "EM-SAME-DAY") == []


# -- drugs (R16, R17) ----------------------------------------------------------------------------------
def test_practice_supplied_drug_gets_its_hcpcs_line(ruleset: RuleSet) -> None:
    v = visit(refilled=True, codes=(chosen("95991"),), drug=drug(amount=2.3, wasted=0.0), qhp_reasons=("x",))
    f = only(evaluate(v, ruleset), "DRUG-HCPCS")
    assert (f.kind, f.code, f.units) == (FindingKind.RECOMMENDED_CODE, "J0475", 3)


def test_single_dose_vial_with_no_waste_needs_jz_from_july_2023(ruleset: RuleSet) -> None:
    line = chosen("J0475", system="hcpcs", units=2)
    v = visit(refilled=True, codes=(chosen("95991"), line), drug=drug(amount=2.0, wasted=0.0), qhp_reasons=("x",))
    f = only(evaluate(v, ruleset), "DRUG-JW-JZ")
    assert (f.code, f.modifiers) == ("J0475", ("JZ",))
    before = replace(v, date_of_service=dt.date(2023, 6, 30))
    assert by_rule(evaluate(before, ruleset), "DRUG-JW-JZ") == []


def test_discarded_drug_needs_a_jw_line(ruleset: RuleSet) -> None:
    line = chosen("J0475", system="hcpcs", units=2)
    v = visit(refilled=True, codes=(chosen("95991"), line), drug=drug(amount=1.5, wasted=1.5), qhp_reasons=("x",))
    f = only(evaluate(v, ruleset), "DRUG-JW-JZ")
    assert (f.modifiers, f.units) == (("JW",), 1)  # 3 units used+wasted, 2 billed for use


def test_waste_covered_by_rounding_needs_no_jw_line(ruleset: RuleSet) -> None:
    line = chosen("J0475", system="hcpcs", units=2)
    v = visit(refilled=True, codes=(chosen("95991"), line), drug=drug(amount=1.5, wasted=0.4), qhp_reasons=("x",))
    assert by_rule(evaluate(v, ruleset), "DRUG-JW-JZ") == []


# -- NCCI and fee schedule ---------------------------------------------------------------------------
def test_mue_of_62370_is_one_unit(ruleset: RuleSet) -> None:
    v = visit(changes=(DOSE_UP,), refilled=True, codes=(chosen("62370", units=2),), qhp_reasons=("x",))
    f = only(evaluate(v, ruleset), "NCCI-MUE")
    assert (f.code, f.units, f.params["billed_units"]) == ("62370", 1, "2")


def test_modifier_26_is_not_allowed_on_62370(ruleset: RuleSet) -> None:
    v = visit(changes=(DOSE_UP,), refilled=True, codes=(chosen("62370", modifiers=("26",)),), qhp_reasons=("x",))
    f = only(evaluate(v, ruleset), "MOD-INDICATOR")
    assert (f.code, f.modifiers, f.severity) == ("62370", ("26",), Severity.CRITICAL)


def test_ptp_edit_with_modifier_indicator_1_is_bypassed_by_59(ruleset: RuleSet) -> None:
    # 62367 with an E/M is PTP MI 1 in the synthetic file; E/M rules aside, a 25 on the E/M bypasses it
    v = visit(codes=(chosen("62367"), chosen("99213", modifiers=("25",), reasons=("M54.50",))))
    assert by_rule(evaluate(v, ruleset), "NCCI-PTP") == []


def test_modifier_25_bypasses_a_ptp_edit_only_on_the_e_m_line(ruleset: RuleSet) -> None:
    """NCCI: 25 is an NCCI-associated modifier for E/M codes; on the procedure line it bypasses nothing."""
    # the E/M rule would remove the E/M first (one problem, one finding): the PTP check alone here
    ptp_only = replace(ruleset, book=replace(ruleset.book, rules=tuple(r for r in ruleset.book.rules if r.id == "NCCI-PTP")))
    v = visit(codes=(chosen("62367", modifiers=("25",)), chosen("99213", reasons=("M54.50",))))
    f = only(evaluate(v, ptp_only), "NCCI-PTP")
    assert (f.code, f.params["column2"]) == ("99213", "99213")
    on_the_e_m = visit(codes=(chosen("62367"), chosen("99213", modifiers=("25",), reasons=("M54.50",))))
    assert by_rule(evaluate(on_the_e_m, ptp_only), "NCCI-PTP") == []


# -- diagnoses, documentation, data quality ------------------------------------------------------------
def test_g35_is_a_header_from_october_2025(ruleset: RuleSet) -> None:
    v = visit(codes=(chosen("62367"),), diagnoses=(("G35", "Condition/ms"),))
    f = only(evaluate(v, ruleset), "DX-G35")
    assert f.replaces == ("G35",)
    old = replace(v, date_of_service=dt.date(2025, 9, 30))
    assert by_rule(evaluate(old, ruleset), "DX-G35") == []


def test_checklist_lists_what_the_record_lacks_for_the_final_code(ruleset: RuleSet) -> None:
    v = visit(changes=(DOSE_UP,), refilled=False, codes=(chosen("62368"),),
              documented=visit().documented - {"doc-change-reason", "doc-alarm-status"})
    f = only(evaluate(v, ruleset), "DOC-CHECKLIST")
    assert (f.code, set(f.missing)) == ("62368", {"doc-change-reason", "doc-alarm-status"})


def test_rules_apply_by_date_of_service(ruleset: RuleSet) -> None:
    v = visit(changes=(DOSE_UP,), refilled=True, performers=(RN,), codes=(chosen("62370"),),
              date_of_service=dt.date(2011, 6, 1))
    assert pump_findings(evaluate(v, ruleset)) == []  # 62370 and the 2012 rules did not exist yet


def test_checklist_leaves_out_what_cannot_apply_to_the_visit(ruleset: RuleSet) -> None:
    """No alarm status for a pump without electronics; no "not reprogrammed" statement after a change
    (both asked here only because the site turned them on: they are not required)."""
    ruleset = replace(ruleset, prompts=frozenset({"doc-alarm-status", "doc-no-reprogramming-statement"}))
    bare = visit().documented - {"doc-alarm-status", "doc-no-reprogramming-statement", "doc-refill-details"}
    isomed = visit(pump=ISOMED, analysed=False, refilled=True, codes=(chosen("95990"),), documented=bare)
    f = only(evaluate(isomed, ruleset), "DOC-CHECKLIST")
    assert "doc-alarm-status" not in f.missing and "doc-no-reprogramming-statement" in f.missing
    synchromed = replace(isomed, pump=SYNCHROMED, analysed=True)
    f = only(evaluate(synchromed, ruleset), "DOC-CHECKLIST")
    assert {"doc-alarm-status", "doc-no-reprogramming-statement"} <= set(f.missing)
    ventricular = replace(isomed, pump=replace(SYNCHROMED, target="intraventricular"), changes=(DOSE_UP,))
    f = only(evaluate(ventricular, ruleset), "DOC-CHECKLIST")
    assert "doc-no-reprogramming-statement" not in f.missing and "doc-alarm-status" in f.missing