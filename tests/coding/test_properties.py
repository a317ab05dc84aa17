"""Properties over generated visits: the engine never raises, never leaves an analysis code beside a
refill code, recommends at most one pump-family code, and its code always fits the facts."""
from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.coding.engine import RuleSet, evaluate
from service.coding.findings import FindingKind
from service.coding.visit import ChosenCode, DrugUse, ParameterChange, Performer, Pump, PumpVisit

FAMILY = ["62367", "62368", "62369", "62370", "95990", "95991"]
ANALYSIS = {"62367", "62368", "62369", "62370"}
REFILL = {"95990", "95991"}
CODES = FAMILY + ["96521", "96522", "96523", "62362", "99213", "99214", "J0475", "J2274"]
PARAMETERS = ["daily-dose", "flow-rate", "concentration", "drug", "infusion-mode", "bolus",
              "reservoir-volume", "alarm-setting", "next-refill-date"]
DOCS = ["doc-visit-date", "doc-device-identification", "doc-route", "doc-reservoir-status", "doc-alarm-status",
        "doc-prescription-status", "doc-performer-attestation", "doc-parameter-change", "doc-change-reason",
        "doc-refill-details", "doc-next-refill-date", "doc-qhp-skill-reason", "doc-separate-problem"]

pumps = st.builds(
    Pump,
    kind=st.sampled_from([None, "programmable-pump", "nonprogrammable-pump", "subcutaneous-reservoir",
                          "external-pump", "venous-access-port"]),
    target=st.sampled_from([None, "intrathecal", "epidural", "spinal", "intraventricular", "intravenous", "intra-arterial"]),
    model=st.sampled_from([None, "SynchroMed II", "IsoMed"]),
)
performers = st.builds(
    Performer,
    reference=st.sampled_from(["Practitioner/a", "Practitioner/b", "PractitionerRole/c"]),
    role=st.sampled_from([None, "physician", "qhp", "staff"]),
    credential=st.sampled_from([None, "MD", "RN", "PA"]),
    supervising=st.booleans(),
)
chosen = st.builds(
    ChosenCode,
    code=st.sampled_from(CODES),
    system=st.sampled_from(["cpt", "hcpcs"]),
    carriers=st.lists(st.sampled_from(["ServiceRequest/1", "ChargeItem/2", "Procedure/3"]), min_size=1, max_size=2).map(tuple),
    modifiers=st.lists(st.sampled_from(["25", "26", "59", "JW", "JZ", "50", "80"]), max_size=2).map(tuple),
    units=st.integers(1, 4),
    reasons=st.lists(st.sampled_from(["Z45.1", "M54.50", "G35", "G89.4"]), max_size=2).map(tuple),
    billed=st.booleans(),
)
changes = st.builds(ParameterChange, parameter=st.sampled_from(PARAMETERS), old=st.just("1"), new=st.just("2"),
                    reference=st.just("Observation/x"))
drugs = st.one_of(st.none(), st.builds(
    DrugUse, name=st.just("baclofen"), hcpcs=st.just("J0475"),
    amount=st.one_of(st.none(), st.floats(0, 50, allow_nan=False)), unit=st.just("10 mg"),
    wasted=st.one_of(st.none(), st.floats(0, 20, allow_nan=False)),
    single_dose_container=st.one_of(st.none(), st.booleans()),
    supplied_by_practice=st.one_of(st.none(), st.booleans()), reference=st.just("MedicationAdministration/m"),
))
visits = st.builds(
    PumpVisit,
    hook=st.sampled_from(["order-sign", "encounter-discharge"]),
    date_of_service=st.dates(dt.date(2012, 1, 1), dt.date(2027, 12, 31)),  # the family exists from 2012
    pump=pumps,
    analysed=st.booleans(),
    refilled=st.booleans(),
    reprogramming_recorded=st.booleans(),
    changes=st.lists(changes, max_size=3).map(tuple),
    activity_source=st.sampled_from(["documented", "chosen-code", "none"]),
    performers=st.lists(performers, max_size=3).map(tuple),
    qhp_reasons=st.lists(st.sampled_from(["difficult-access", "complex-reprogramming"]), max_size=1).map(tuple),
    codes=st.lists(chosen, max_size=4, unique_by=lambda c: c.code).map(tuple),
    diagnoses=st.lists(st.tuples(st.sampled_from(["G35", "Z45.1", "G89.4"]), st.just("Condition/c")), max_size=2).map(tuple),
    drug=drugs,
    documented=st.frozensets(st.sampled_from(DOCS)),
    payer_identifiers=st.lists(st.sampled_from(["http://pumpcds.org/fhir/sid/payer|example-any-parameter", "x|y"]), max_size=1).map(tuple),
    payer_names=st.lists(st.sampled_from(["Medicare Part B", "Example Health Plan"]), max_size=1).map(tuple),
    separate_problem=st.booleans(),
)

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _final_family_codes(v: PumpVisit, findings) -> set[str]:
    """The pump-family codes the visit carries after every finding's correction is applied."""
    codes = {c.code for c in v.codes if c.code in FAMILY}
    for f in findings:
        codes -= set(f.replaces) & set(FAMILY)
        if f.kind in (FindingKind.RECOMMENDED_CODE, FindingKind.REPLACE_CODE) and f.code in FAMILY:
            codes.add(f.code)
    return codes


@SETTINGS
@given(visits)
def test_engine_never_raises_and_sorts_by_importance(ruleset: RuleSet, v: PumpVisit) -> None:
    findings = evaluate(v, ruleset)
    assert [f.sort_key for f in findings] == sorted(f.sort_key for f in findings)
    for f in findings:
        assert f.rule.id and f.rule.version and f.rule.source


@SETTINGS
@given(visits)
def test_never_an_analysis_code_beside_a_refill_code(ruleset: RuleSet, v: PumpVisit) -> None:
    final = _final_family_codes(v, evaluate(v, ruleset))
    assert not (final & ANALYSIS and final & REFILL), final


@SETTINGS
@given(visits)
def test_at_most_one_pump_family_code_is_recommended(ruleset: RuleSet, v: PumpVisit) -> None:
    findings = evaluate(v, ruleset)
    recommended = {f.code for f in findings if f.code in FAMILY and f.kind in (FindingKind.RECOMMENDED_CODE, FindingKind.REPLACE_CODE)}
    assert len(recommended) <= 1
    assert len(_final_family_codes(v, findings)) <= 1


@SETTINGS
@given(visits)
def test_the_recommended_code_fits_the_facts(ruleset: RuleSet, v: PumpVisit) -> None:
    profile, _ = ruleset.payers.for_visit(v)
    for f in evaluate(v, ruleset):
        if f.kind not in (FindingKind.RECOMMENDED_CODE, FindingKind.REPLACE_CODE) or f.code not in FAMILY:
            continue
        info = ruleset.codes.get(f.code)
        assert info is not None
        if v.pump.kind is not None:
            assert v.pump.kind in info.pump_kinds
        assert info.refilled == v.refilled
        spinal_programmable = v.pump.kind in (None, "programmable-pump") and v.pump.target in (
            None, "intrathecal", "epidural", "spinal")
        if spinal_programmable:  # other pumps take 95990/95991 whatever was programmed (R7, R8)
            assert info.reprogrammed == v.reprogrammed(profile.reprogramming_parameters)
        if info.requires_qhp:
            assert v.qhp_performed is not False  # never a physician/QHP code for staff work
        if info.qhp_code and spinal_programmable:
            assert v.qhp_performed is not True  # physician/QHP work takes the QHP variant
        if info.pump_kinds and v.pump.target not in (None, "spinal"):
            assert v.pump.target in info.targets
