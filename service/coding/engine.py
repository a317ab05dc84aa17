"""PROVISIONAL: replaced by the rules-as-data engine (issue 3). Keeps the contract:

    engine = CodingEngine.load(settings)
    assessment = engine.assess(visit_resources)   # pure, no I/O
    assessment.findings -> list[Finding], sorted by importance
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..fhir.resources import VisitResources
from .findings import Evidence, Finding, FindingKind, RuleRef, Severity

DQ_RULE = RuleRef("DQ-1", "1", "pumpcds input contract (docs/fhir-input.md)", "I")


@dataclass
class Assessment:
    findings: list[Finding]
    visit: Any = None
    rule_ids: list[str] = field(default_factory=list)


class CodingEngine:
    @classmethod
    def load(cls, settings: Settings) -> "CodingEngine":
        return cls()

    def assess(self, resources: VisitResources) -> Assessment:
        findings = [
            Finding(
                kind=FindingKind.DATA_QUALITY,
                severity=Severity.INFO,
                rule=DQ_RULE,
                evidence=(Evidence(f"{i.location}/{i.resource_type}/{i.resource_id}", i.problem),),
            )
            for i in resources.issues
            if i.skipped
        ]
        return Assessment(findings=findings, rule_ids=sorted({f.rule.id for f in findings}))
