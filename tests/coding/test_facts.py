"""FHIR R4 -> PumpVisit: each fact from the resource shapes docs/fhir-input.md promises."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from service.coding.codetable import default_code_table
from service.coding.facts import VisitReader
from service.coding.vocabulary import Vocabulary
from service.config import ConfigError
from service.fhir.parse import parse_many
from service.fhir.resources import ResourceIssue, VisitResources

P = "http://pumpcds.org/fhir/CodeSystem/pump-visit"
CPT = "http://www.ama-assn.org/go/cpt"
SCT = "http://snomed.info/sct"
ENC = {"reference": "Encounter/enc1"}


def reader(site_mapping: str = "") -> VisitReader:
    return VisitReader(Vocabulary.load(site_mapping), default_code_table())


def read(resources: list[dict[str, Any]], drafts: list[dict[str, Any]] = (), *, encounter: str | None = "enc1",
         site_mapping: str = "", issues: list[ResourceIssue] = ()):  # type: ignore[assignment]
    parsed, problems = parse_many(resources, "prefetch")
    draft_models, more = parse_many(list(drafts), "draftOrders")
    assert problems == [] and more == []
    context = {"patientId": "pt1", "userId": "Practitioner/u"}
    if encounter:
        context["encounterId"] = encounter
    vr = VisitResources(context=context, hook="order-sign", draft_orders=draft_models, resources=parsed,
                        issues=list(issues))
    return reader(site_mapping).read(vr)


def device(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Device", "id": "pump", "status": "active", **extra}


def procedure(pid: str, *codes: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Procedure", "id": pid, "status": "completed", "subject": {"reference": "Patient/pt1"},
            "encounter": ENC, "performedDateTime": "2026-11-20T10:00:00Z",
            "code": {"coding": [{"system": s, "code": c} for s, c in codes]}, **extra}


def change(oid: str, parameter: str, old: float, new: float, unit: str = "mg/d") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final", "encounter": ENC,
            "effectiveDateTime": "2026-11-20T10:05:00Z", "code": {"coding": [{"system": P, "code": parameter}]},
            "valueQuantity": {"value": new, "unit": unit},
            "component": [{"code": {"coding": [{"system": P, "code": "previous-value"}]},
                           "valueQuantity": {"value": old, "unit": unit}}]}


@pytest.mark.parametrize(
    "name, kind", [("SynchroMed II", "programmable-pump"), ("SynchroMed III", "programmable-pump"),
                   ("Prometra II", "programmable-pump"), ("IsoMed 35 mL", "nonprogrammable-pump"),
                   ("Codman 3000", "nonprogrammable-pump")],
)
def test_pump_kind_from_the_model_table(name: str, kind: str) -> None:
    v = read([device(deviceName=[{"name": name, "type": "model-name"}])])
    assert (v.pump.kind, v.pump.reference) == (kind, "Device/pump")


def test_pump_kind_and_target_from_device_type_and_property() -> None:
    v = read([device(type={"coding": [{"system": SCT, "code": "118426006"}]})])
    assert (v.pump.kind, v.pump.target) == ("subcutaneous-reservoir", "intraventricular")
    v = read([device(type={"coding": [{"system": P, "code": "programmable-pump"}]},
                     property=[{"type": {"coding": [{"system": P, "code": "target"}]},
                                "valueCode": [{"coding": [{"system": P, "code": "epidural"}]}]}])])
    assert (v.pump.kind, v.pump.target) == ("programmable-pump", "epidural")


def test_target_from_the_route_of_the_refill_drug() -> None:
    ma = {"resourceType": "MedicationAdministration", "id": "ma", "status": "completed",
          "subject": {"reference": "Patient/pt1"}, "context": ENC, "effectiveDateTime": "2026-11-20T10:10:00Z",
          "medicationCodeableConcept": {"text": "baclofen 2000 mcg/mL"},
          "dosage": {"route": {"coding": [{"system": SCT, "code": "72607000"}]}, "dose": {"value": 20, "unit": "mL", "code": "mL"}}}
    conc = {"resourceType": "Observation", "id": "c", "status": "final", "encounter": ENC,
            "code": {"coding": [{"system": P, "code": "concentration"}]}, "valueQuantity": {"value": 2, "unit": "mg/mL", "code": "mg/mL"}}
    v = read([device(deviceName=[{"name": "SynchroMed II", "type": "model-name"}]), ma, conc])
    assert v.pump.target == "intrathecal" and v.refilled
    assert v.drug is not None and (v.drug.hcpcs, v.drug.amount) == ("J0475", pytest.approx(4.0))  # 40 mg = 4 x 10 mg


def test_parameter_changes_keep_old_and_new_values() -> None:
    v = read([procedure("p", (P, "reprogramming")), change("o1", "daily-dose", 0.5, 0.55), change("o2", "alarm-setting", 2, 2, "mL")])
    assert [(c.parameter, c.old, c.new) for c in v.changes] == [("daily-dose", "0.5 mg/d", "0.55 mg/d")]
    assert v.reprogramming_recorded and "doc-parameter-change" in v.documented


def test_an_alarm_setting_confirmed_unchanged_documents_the_alarm_status() -> None:
    v = read([procedure("p", (P, "electronic-analysis")), change("o2", "alarm-setting", 2, 2, "mL")])
    assert v.changes == () and "doc-alarm-status" in v.documented
    v = read([procedure("p", (P, "electronic-analysis"))])
    assert "doc-alarm-status" not in v.documented


def test_the_administered_amount_wins_over_the_ordered_dose() -> None:
    """A refill ordered (MedicationRequest) and given (MedicationAdministration) is one refill, not two."""
    route = {"coding": [{"system": SCT, "code": "72607000"}]}
    ma = {"resourceType": "MedicationAdministration", "id": "ma", "status": "completed",
          "subject": {"reference": "Patient/pt1"}, "context": ENC, "effectiveDateTime": "2026-11-20T10:10:00Z",
          "medicationCodeableConcept": {"text": "baclofen 2000 mcg/mL"},
          "dosage": {"route": route, "dose": {"value": 20, "unit": "mL", "code": "mL"}}}
    mr = {"resourceType": "MedicationRequest", "id": "mr", "status": "draft", "intent": "order",
          "subject": {"reference": "Patient/pt1"}, "encounter": ENC, "authoredOn": "2026-11-20",
          "medicationCodeableConcept": {"text": "baclofen 2000 mcg/mL"},
          "dosageInstruction": [{"route": route, "doseAndRate": [{"doseQuantity": {"value": 20, "unit": "mL", "code": "mL"}}]}]}
    conc = {"resourceType": "Observation", "id": "c", "status": "final", "encounter": ENC,
            "code": {"coding": [{"system": P, "code": "concentration"}]}, "valueQuantity": {"value": 2, "unit": "mg/mL", "code": "mg/mL"}}
    pump = device(deviceName=[{"name": "SynchroMed II", "type": "model-name"}])
    both = read([pump, ma, conc], [mr])
    assert both.drug is not None and both.drug.amount == pytest.approx(4.0)  # 40 mg given, not 80
    ordered = read([pump, conc], [mr])
    assert ordered.drug is not None and ordered.drug.amount == pytest.approx(4.0)


def test_a_same_day_em_diagnosis_alone_is_not_the_documented_separate_problem() -> None:
    """Which diagnoses are pump care is EM-SAME-DAY's data; the fact is only the documented statement."""
    sr = {"resourceType": "ServiceRequest", "id": "em", "status": "draft", "intent": "order",
          "subject": {"reference": "Patient/pt1"}, "encounter": ENC,
          "code": {"coding": [{"system": CPT, "code": "99213"}]},
          "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M54.50"}]}]}
    v = read([device(deviceName=[{"name": "SynchroMed II", "type": "model-name"}])], [sr])
    assert not v.separate_problem
    assert [c.reasons for c in v.codes if c.code == "99213"] == [("M54.50",)]


def test_performer_qualification_from_nucc_role_and_v2_degree() -> None:
    role = {"resourceType": "PractitionerRole", "id": "r1", "practitioner": {"reference": "Practitioner/n"},
            "code": [{"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": "163W00000X"}]}]}
    md = {"resourceType": "Practitioner", "id": "md", "qualification": [
        {"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0360", "code": "MD"}]}}]}
    proc = procedure("p", (P, "refill"), performer=[
        {"actor": {"reference": "PractitionerRole/r1"}},
        {"actor": {"reference": "Practitioner/md"}, "function": {"coding": [{"system": P, "code": "supervising-physician"}]}}])
    v = read([proc, role, md])
    assert v.qhp_performed is False
    assert v.supervisor is not None and v.supervisor.role == "physician"
    assert {"doc-performer-attestation", "doc-supervising-physician"} <= v.documented


def test_chosen_codes_accept_https_cpt_modifiers_and_units() -> None:
    sr = {"resourceType": "ServiceRequest", "id": "sr", "status": "draft", "intent": "order",
          "subject": {"reference": "Patient/pt1"}, "encounter": ENC, "authoredOn": "2026-11-20",
          "code": {"coding": [{"system": "https://www.ama-assn.org/go/cpt", "code": "62370"}]},
          "quantityQuantity": {"value": 2},
          "extension": [{"url": "http://pumpcds.org/fhir/StructureDefinition/billing-modifier",
                         "valueCoding": {"system": CPT, "code": "26"}}]}
    v = read([], [sr])
    code = v.code("62370")
    assert code is not None and (code.units, code.modifiers, code.carriers) == (2, ("26",), ("ServiceRequest/sr",))


def test_only_this_encounters_resources_count() -> None:
    old = procedure("old", (P, "refill"), encounter={"reference": "Encounter/earlier"})
    v = read([old, procedure("now", (P, "electronic-analysis"))])
    assert v.analysed and not v.refilled


def test_without_an_encounter_the_date_of_service_scopes_the_visit() -> None:
    old = procedure("old", (P, "refill"), encounter=None, performedDateTime="2026-10-01T10:00:00Z")
    sr = {"resourceType": "ServiceRequest", "id": "sr", "status": "draft", "intent": "order",
          "subject": {"reference": "Patient/pt1"}, "authoredOn": "2026-11-20",
          "code": {"coding": [{"system": CPT, "code": "62367"}]}}
    v = read([old], [sr], encounter=None)
    assert v.date_of_service == dt.date(2026, 11, 20) and not v.refilled


def test_without_any_activity_the_chosen_code_stands_for_the_activities() -> None:
    v = read([procedure("p", (CPT, "62369"))])
    assert v.activity_source == "chosen-code" and v.refilled and v.reprogramming_recorded


def test_site_mapping_turns_local_codes_into_pumpcds_concepts(tmp_path: Path) -> None:
    mapping = tmp_path / "site.yaml"
    mapping.write_text("mappings:\n  - {system: 'urn:oid:1.2.3.4', code: 'PUMP-RF', target: refill}\n")
    v = read([procedure("p", ("urn:oid:1.2.3.4", "PUMP-RF"))], site_mapping=str(mapping))
    assert v.refilled and v.activity_source == "documented"


def test_site_mapping_to_an_unknown_concept_is_a_config_error(tmp_path: Path) -> None:
    mapping = tmp_path / "site.yaml"
    mapping.write_text("mappings:\n  - {system: 'x', code: 'y', target: refil}\n")
    with pytest.raises(ConfigError, match="refil"):
        reader(str(mapping))


def test_skipped_resources_become_input_problems() -> None:
    issue = ResourceIssue("prefetch:procedures", "Procedure", "bad", "not valid FHIR R4: status: missing")
    v = read([], issues=[issue])
    assert [e.reference for e in v.input_problems] == ["prefetch:procedures:Procedure/bad"]
