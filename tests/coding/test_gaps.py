"""The coding gaps of issue 14, each written before its fix (they fail on the earlier engine):
reservoir/alarm changes document the status, a non-programmable pump is its own finding,
refill documentation without a J-code, the performer's signature, E/M-25 without a separate
problem, and the alert policy (required elements only; duration is not required)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from service.coding.codetable import default_code_table
from service.coding.engine import RuleSet, evaluate
from service.coding.findings import FindingKind, Severity
from tests.coding.test_facts import ENC, SCT, P, change, device, procedure, read
from tests.coding.test_rules import by_rule, only
from tests.coding.visits import ALL_DOCS, DOSE_UP, ISOMED, MD, RN, SUPERVISOR, chosen, visit

SYNCHROMED = device(deviceName=[{"name": "SynchroMed II", "type": "model-name"}], serialNumber="NGP1")


# -- facts: one place says what a parameter documents ---------------------------------------------
def test_reservoir_and_alarm_recorded_as_changes_document_their_status() -> None:
    """docs/fhir-input.md section 7: readings *and changes* of reservoir volume and alarm document them."""
    v = read([SYNCHROMED, procedure("p", (P, "electronic-analysis"), (P, "refill")),
              change("vol", "reservoir-volume", 2, 20, "mL"), change("alarm", "alarm-setting", 2, 3, "mL")])
    assert {c.parameter for c in v.changes} == {"reservoir-volume", "alarm-setting"}
    assert {"doc-reservoir-status", "doc-alarm-status"} <= v.documented


def _refill(drug_text: str, *extra: dict[str, Any]) -> Any:
    ma = {"resourceType": "MedicationAdministration", "id": "ma", "status": "completed",
          "subject": {"reference": "Patient/pt1"}, "context": ENC, "effectiveDateTime": "2026-11-20T10:10:00Z",
          "medicationCodeableConcept": {"text": drug_text}, "device": [{"reference": "Device/pump"}],
          "dosage": {"route": {"coding": [{"system": SCT, "code": "72607000"}]}, "dose": {"value": 20, "unit": "mL", "code": "mL"}}}
    facts = [{"resourceType": "Observation", "id": code, "status": "final", "encounter": ENC,
              "effectiveDateTime": "2026-11-20T10:08:00Z", "code": {"coding": [{"system": P, "code": code}]},
              "valueQuantity": {"value": value, "unit": "mL", "code": "mL"}}
             for code, value in (("residual-volume-aspirated", 2.5), ("volume-instilled", 20))]
    return read([SYNCHROMED, procedure("p", (P, "refill")), ma, *facts, *extra])


def test_refill_details_do_not_depend_on_the_hcpcs_drug_table() -> None:
    """An admixture with no J-code is documented by what the record states."""
    no_jcode = _refill("bupivacaine 20 mg/mL (compounded)")
    assert no_jcode.drug is None  # no J-code: no drug line is proposed ...
    assert "doc-refill-details" in no_jcode.documented  # ... but the refill is documented
    admixture = _refill("bupivacaine 20 mg/mL with hydromorphone 5 mg/mL (compounded)")
    assert "doc-refill-details" in admixture.documented
    assert "doc-refill-details" in _refill("baclofen 2000 mcg/mL").documented


def _signature_obs(value: Any, status: str = "final") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "sig", "status": status, "encounter": ENC,
            "effectiveDateTime": "2026-11-20T10:30:00Z",
            "code": {"coding": [{"system": P, "code": "doc-performer-signature"}]}, "valueBoolean": value}


def test_signature_is_its_own_fact_signed_unsigned_or_unknown() -> None:
    base = [SYNCHROMED, procedure("p", (P, "electronic-analysis"))]
    assert read(base).signature == "unknown"
    signed = read([*base, _signature_obs(True)])
    assert signed.signature == "signed" and "doc-performer-signature" in signed.documented
    unsigned = read([*base, _signature_obs(False)])
    assert unsigned.signature == "unsigned" and "doc-performer-signature" not in unsigned.documented
    preliminary = dict(change("vol", "reservoir-volume", 20, 20, "mL"), status="preliminary")
    assert read([*base, preliminary]).signature == "unsigned"  # a result not attested


# -- rules ----------------------------------------------------------------------------------------
def test_unsigned_note_with_a_known_credential_prompts_for_the_signature(ruleset: RuleSet) -> None:
    v = visit(codes=(chosen("62367"),), signature="unsigned", documented=ALL_DOCS)
    f = only(evaluate(v, ruleset), "DOC-CHECKLIST")
    assert f.missing == ("doc-performer-signature",)
    assert by_rule(evaluate(replace(v, signature="unknown"), ruleset), "DOC-CHECKLIST") == []


def test_analysis_code_on_a_constant_flow_pump_is_critical_even_when_bundling_fires(ruleset: RuleSet) -> None:
    v = visit(pump=ISOMED, analysed=False, refilled=True, performers=(RN, SUPERVISOR),
              codes=(chosen("62369"), chosen("95990")))
    findings = evaluate(v, ruleset)
    nonprog = only(findings, "SEL-NONPROG")
    assert nonprog.severity == Severity.CRITICAL and nonprog.replaces == ("62369",)
    assert by_rule(findings, "BUN-ANALYSIS-REFILL")  # the bundling finding stays too
    for f in findings:  # a constant-flow pump is never said to have been analysed electronically
        assert "electronic analysis" not in f.params.get("activities", "")
        assert "electronic analysis" not in f.params.get("reason", "")


def test_a_constant_flow_refill_never_asks_for_what_only_an_analysis_reads(ruleset: RuleSet) -> None:
    v = visit(pump=ISOMED, analysed=False, refilled=True, performers=(RN, SUPERVISOR), codes=(chosen("95990"),),
              documented=ALL_DOCS - {"doc-reservoir-status", "doc-alarm-status", "doc-prescription-status"})
    assert by_rule(evaluate(v, ruleset), "DOC-CHECKLIST") == []


def test_em_with_25_and_no_separate_problem_is_removed_with_the_alternative(ruleset: RuleSet) -> None:
    """CPT Assistant 2012 scenario 3: a refill with no other problem carries no E/M."""
    pump_line = chosen("62370", reasons=("G89.29",))
    v = visit(codes=(pump_line, chosen("99213", modifiers=("25",), reasons=("G89.29",))))
    f = only(evaluate(v, ruleset), "EM-SAME-DAY")
    assert (f.kind, f.replaces, f.missing) == (FindingKind.DROP_CODE, ("99213",), ("doc-separate-problem",))
    assert f.affected == ("ServiceRequest/sr-99213",)


def test_good_practice_elements_never_make_a_card_unless_the_site_asks(ruleset: RuleSet) -> None:
    good_practice = {"doc-indication", "doc-no-change-statement", "doc-post-change-verification",
                     "doc-device-identification", "doc-route", "doc-no-reprogramming-statement", "doc-duration"}
    for code, extra in (("62367", {}), ("62368", {"changes": (DOSE_UP,)}),
                        ("62370", {"changes": (DOSE_UP,), "refilled": True, "qhp_reasons": ("x",)}),
                        ("95991", {"refilled": True, "qhp_reasons": ("x",)})):
        v = visit(codes=(chosen(code),), performers=(MD,), documented=ALL_DOCS - good_practice, **extra)
        assert evaluate(v, ruleset) == [], code
        site = replace(ruleset, prompts=frozenset({"doc-indication", "doc-post-change-verification"}))
        wanted = {"62367": {"doc-indication"}, "62368": {"doc-post-change-verification"},
                  "62370": {"doc-post-change-verification"}, "95991": set()}[code]
        got = {m for f in by_rule(evaluate(v, site), "DOC-CHECKLIST") for m in f.missing}
        assert got == wanted, code


def test_duration_is_decided_not_required_with_its_source() -> None:
    table = default_code_table()
    policy = table.policy["doc-duration"]
    assert not any(table.required(code, "doc-duration") for code in ("62367", "62368", "62369", "62370", "95990", "95991"))
    assert "time-based" in policy.source and "doc-duration" in [c.code for c in table.checklist("62369")]


def test_every_required_element_cites_a_primary_source() -> None:
    table = default_code_table()
    for element, p in table.policy.items():
        assert p.source, element
        assert "coding-rules" not in p.source and "seed" not in p.source, element
        if p.required_for is None or p.required_for:
            assert any(s in p.source for s in ("CPT", "CMS", "NCCI", "Medicare", "CFR")), element
