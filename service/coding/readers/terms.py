"""What the readers look codes up in: the vocabulary (standard codes, site mapping), the code
table, and the groups of the pumpcds CodeSystem; built once per app."""
from __future__ import annotations

from typing import Any

from ...fhir.jsonview import text
from ..codetable import CodeTable
from ..terminology import concepts
from ..vocabulary import PUMPCDS, Vocabulary
from .notes import VisitNotes

INACTIVE = frozenset({"entered-in-error", "not-done", "cancelled", "revoked", "aborted", "stopped", "preparation"})
MASS_TO_MG = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001, "µg": 0.001}


class Terms:
    def __init__(self, vocabulary: Vocabulary, code_table: CodeTable) -> None:
        self.vocab = vocabulary
        self.codes = code_table
        groups: dict[str, set[str]] = {}
        for c in concepts().values():
            groups.setdefault(c.group, set()).add(c.code)
        self.parameters = frozenset(groups.get("parameter", set()) - {"previous-value"})
        self.doc_elements = frozenset(groups.get("documentation", set()))
        self.qhp_reasons = frozenset(groups.get("qhp-skill-reason", set()))
        self.targets = frozenset(groups.get("target", set()))
        self.kinds = frozenset(groups.get("pump-kind", set()))

    def codings(self, concept: Any) -> list[tuple[str | None, str, str | None]]:
        """(system name, code, display) of a CodeableConcept, site mapping applied (vocabulary.py)."""
        return self.vocab.codings(concept)

    def route_target(self, concept: Any) -> str | None:
        """The pumpcds target a route (or body site) names: a SNOMED CT route or a pumpcds target."""
        for system, code, _ in self.vocab.codings(concept):
            if system == "snomed" and code in self.vocab.routes:
                return self.vocab.routes[code]
            if system == PUMPCDS and code in self.targets:
                return code
        return None

    def target_from(self, concept: Any, notes: VisitNotes, ref: str) -> str | None:
        """Note where the drug goes (first recognised coding of a route or body site)."""
        target = self.route_target(concept)
        if target:
            self.note_target(target, notes, ref)
        return target

    @staticmethod
    def note_target(target: str, notes: VisitNotes, ref: str) -> None:
        notes.targets.append(target)
        notes.note("target", ref, f"delivered: {words(target)}")

    def drug_codes(self, concept: Any, notes: VisitNotes) -> None:
        """Note the drug a medication concept names: RxNorm, HCPCS and every name in it."""
        if type(concept) is not dict:
            return
        name = text(concept.get("text"))
        if name:
            notes.drug_texts.append(name)
        for system, code, display in self.vocab.codings(concept):
            if system == "rxnorm":
                notes.drug_rxnorm.add(code)
            elif system == "hcpcs":
                notes.drug_hcpcs.add(code)
            if display:
                notes.drug_texts.append(display)


def words(code: str) -> str:
    """A pumpcds concept as the words of its display (evidence is read by clinicians, not coders)."""
    c = concepts().get(code)
    return c.display[0].lower() + c.display[1:] if c else code.replace("-", " ")


def fmt(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")
