"""Procedure reader: activities, when and how long, where, on which device, by whom, why, codes."""
from __future__ import annotations

import datetime as dt

from service.coding.readers import procedure
from service.coding.readers.scope import Scope

from .conftest import CPT, ENC, ICD, P, concept, observed


def proc(**extra):
    return {"resourceType": "Procedure", "id": "p", "status": "completed", "encounter": ENC,
            "performedDateTime": "2026-11-20T10:00:00-05:00", "code": concept(P, "electronic-analysis", "refill"), **extra}


def test_activities_are_noted_in_clinician_words_with_the_day(notes, terms) -> None:
    procedure.read(proc(), notes, terms)
    assert notes.activities == {"electronic-analysis", "refill"}
    assert observed(notes, "refill") and notes.evidence["refill"][0].date == "2026-11-20"
    assert notes.evidence["electronic-analysis"][0].reference == "Procedure/p"
    assert "doc-visit-date" in notes.documented and "doc-duration" not in notes.documented


def test_a_period_with_start_and_end_documents_the_duration(notes, terms) -> None:
    p = proc(performedPeriod={"start": "2026-11-20T09:40:00Z", "end": "2026-11-20T10:25:00Z"})
    del p["performedDateTime"]
    procedure.read(p, notes, terms)
    assert {"doc-duration", "doc-visit-date"} <= notes.documented


def test_body_site_device_and_performers(notes, terms) -> None:
    procedure.read(proc(bodySite=[concept(P, "intrathecal")], focalDevice=[{"manipulated": {"reference": "Device/pump"}}],
                        performer=[{"actor": {"reference": "Practitioner/rn"}},
                                   {"actor": {"reference": "Practitioner/md"}, "function": concept(P, "supervising-physician")},
                                   {"function": concept(P, "primary-performer")}]), notes, terms)
    assert notes.targets == ["intrathecal"] and notes.device_refs == ["Device/pump"]
    assert notes.performer_refs == {"Practitioner/rn": False, "Practitioner/md": True}
    assert observed(notes, "target") == ["delivered: intrathecal"]


def test_reasons_qhp_skill_diagnosis_and_stated_reason(notes, terms) -> None:
    procedure.read(proc(code=concept(P, "reprogramming"),
                        reasonCode=[concept(P, "imaging-guidance"), concept(ICD, "G35"), {"text": "dose too low"}]), notes, terms)
    assert notes.qhp_reasons == ["imaging-guidance"]
    assert notes.diagnoses == [("G35", "Procedure/p")]
    assert "doc-change-reason" in notes.documented and "doc-indication" not in notes.documented


def test_a_draft_procedure_bills_its_codes_a_recorded_one_only_records_them(notes, terms) -> None:
    procedure.read(proc(code=concept(CPT, "62369")), notes, terms, billed=True)
    procedure.read(proc(id="q", code=concept(CPT, "62369")), notes, terms)
    assert notes.code_carriers[("cpt", "62369")] == [("Procedure/p", "billed"), ("Procedure/q", "record")]
    assert observed(notes, "code:62369") == ["code 62369", "code 62369"]


def test_scope_status_and_encounter() -> None:
    scope = Scope("enc1", dt.date(2026, 11, 20))
    assert procedure.in_visit(proc(), scope)
    assert not procedure.in_visit(proc(status="entered-in-error"), scope)
    assert not procedure.in_visit(proc(encounter={"reference": "Encounter/other"}), scope)
    assert procedure.in_visit(proc(encounter=None, performedDateTime="2026-11-20T23:00:00Z"), scope)
    assert not procedure.in_visit(proc(encounter=None, performedDateTime="2026-11-19T23:00:00Z"), scope)
