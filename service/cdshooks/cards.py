"""PROVISIONAL: replaced by template-driven cards (issue 4). Contract:

    builder = CardBuilder.load(settings)
    cards = builder.build(findings, request, resources)  # list of CDS Hooks 2.0 card dicts
"""
from __future__ import annotations

import uuid
from typing import Any

from ..config import Settings
from ..coding.findings import Finding
from ..fhir.resources import VisitResources
from .validation import HookRequest


class CardBuilder:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def load(cls, settings: Settings) -> "CardBuilder":
        return cls(settings)

    def build(self, findings: list[Finding], request: HookRequest, resources: VisitResources) -> list[dict[str, Any]]:
        cards = []
        for f in sorted(findings, key=lambda f: f.sort_key):
            summary = f"{f.kind.value}: {f.code or ''} ({f.rule.id})".strip()[:139]
            cards.append(
                {
                    "uuid": str(uuid.uuid4()),
                    "summary": summary,
                    "indicator": f.severity.value,
                    "source": {"label": "pumpcds"},
                    "detail": "\n".join(f"- {e.reference}: {e.observed}" for e in f.evidence) or f.rule.source,
                }
            )
        return cards
