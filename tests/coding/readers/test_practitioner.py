"""Practitioner/PractitionerRole reader: who did the work, who supervised, and their role."""
from __future__ import annotations

from service.coding.readers import practitioner
from service.coding.readers.notes import VisitNotes

from .conftest import SCT, concept, observed

V2 = "http://terminology.hl7.org/CodeSystem/v2-0360"
NUCC = "http://nucc.org/provider-taxonomy"


def always(_: object) -> bool:
    return True


def role(rid: str, pid: str, **extra):
    return {"resourceType": "PractitionerRole", "id": rid, "practitioner": {"reference": f"Practitioner/{pid}"}, **extra}


def prac(pid: str, *quals):
    return {"resourceType": "Practitioner", "id": pid, "qualification": [{"code": q} for q in quals]}


def test_roles_from_nucc_snomed_degrees_and_text(terms) -> None:
    assert practitioner.of_role(role("r", "n", code=[concept(NUCC, "163W00000X")]), terms) == ("staff", "RN")
    assert practitioner.of_role(role("r", "d", specialty=[concept(NUCC, "208VP0000X")]), terms) == ("physician", "physician")
    assert practitioner.of_role(role("r", "x", code=[concept(SCT, "000")]), terms) == (None, None)
    assert practitioner.of_practitioner(prac("p", concept(V2, "RN"), concept(V2, "MD")), terms) == ("physician", "MD")
    assert practitioner.of_practitioner(prac("p", {"text": " np "}), terms) == ("qhp", "NP")


def test_performers_from_procedures_and_orders(terms) -> None:
    roles = [role("rn1-role", "rn1", code=[concept(NUCC, "163W00000X")])]
    pracs = [prac("md1", concept(V2, "MD"))]
    notes = VisitNotes(performer_refs={"PractitionerRole/rn1-role": False, "Practitioner/md1": True},
                       order_performer_refs=["Practitioner/other"])
    found = practitioner.performers(notes, terms, pracs, roles, always)
    assert [(p.reference, p.role, p.supervising) for p in found] == [
        ("PractitionerRole/rn1-role", "staff", False), ("Practitioner/md1", "physician", True)]
    assert {"doc-performer-attestation", "doc-supervising-physician"} <= notes.documented
    assert observed(notes, "supervisor") == ["physician/QHP (MD)"]


def test_the_orders_performer_counts_only_when_no_one_else_did_the_work(terms) -> None:
    notes = VisitNotes(performer_refs={"Practitioner/md1": True}, order_performer_refs=["Practitioner/np"])
    found = practitioner.performers(notes, terms, [prac("np", concept(V2, "NP"))], [], always)
    assert [(p.reference, p.role) for p in found] == [("Practitioner/md1", None), ("Practitioner/np", "qhp")]


def test_a_practitioner_found_through_its_role_and_a_rejected_one_is_unknown(terms) -> None:
    notes = VisitNotes(performer_refs={"Practitioner/rn1": False})
    roles = [role("rn1-role", "rn1", code=[concept(NUCC, "163W00000X")])]
    assert practitioner.performers(notes, terms, [], roles, always)[0].role == "staff"
    notes = VisitNotes(performer_refs={"Practitioner/rn1": False})
    assert practitioner.performers(notes, terms, [], roles, lambda r: False)[0].role is None
    assert "doc-performer-attestation" not in notes.documented
