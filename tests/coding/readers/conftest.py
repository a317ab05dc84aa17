from __future__ import annotations

import pytest

from service.coding.codetable import default_code_table
from service.coding.readers.notes import VisitNotes
from service.coding.readers.terms import Terms
from service.coding.vocabulary import Vocabulary

P = "http://pumpcds.org/fhir/CodeSystem/pump-visit"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
SCT = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
ENC = {"reference": "Encounter/enc1"}
MODIFIER = "http://pumpcds.org/fhir/StructureDefinition/billing-modifier"


def concept(system: str, *codes: str) -> dict:
    return {"coding": [{"system": system, "code": c} for c in codes]}


@pytest.fixture(scope="session")
def terms() -> Terms:
    return Terms(Vocabulary.load(), default_code_table())


@pytest.fixture
def notes() -> VisitNotes:
    return VisitNotes()


def observed(notes: VisitNotes, fact: str) -> list[str]:
    return [e.observed for e in notes.evidence.get(fact, [])]
