"""What the coding engine concludes about a visit, independent of how it is shown.

Findings are the contract between the engine (``service.coding``) and the card builder
(``service.cdshooks.cards``): the engine never writes wording, the card builder never
re-derives a coding decision.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class FindingKind(StrEnum):
    RECOMMENDED_CODE = "recommended-code"  # the code this visit should carry
    REPLACE_CODE = "replace-code"  # a chosen code is wrong; `replaces` -> `code`
    DROP_CODE = "drop-code"  # a chosen code must go (bundled, duplicate, not allowed)
    WARNING = "warning"  # likely error or compliance risk without a code change
    MISSING_DOCUMENTATION = "missing-documentation"
    DATA_QUALITY = "data-quality"  # input that could not be read as sent


class Severity(StrEnum):
    """Card indicator policy: critical = claim wrong/rejected, warning = likely error, info = advice."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class RuleRef:
    """Identity and provenance of the rule that produced a finding."""

    id: str
    version: str
    source: str  # citation a coder can check, e.g. "CPT parenthetical after 62370"
    verification: str = "I"  # V, V2, U or I as in docs/rules.md
    url: str | None = None


@dataclass(frozen=True)
class Evidence:
    """One fact that made the rule fire, pointing at the FHIR resource it came from."""

    reference: str  # "Procedure/abc" or "draftOrders/ServiceRequest/xyz"
    observed: str  # plain statement of what was seen, no patient identifiers
    date: str | None = None


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    severity: Severity
    rule: RuleRef
    code: str | None = None  # recommended / replacement code (CPT or HCPCS)
    code_system: str | None = None
    replaces: tuple[str, ...] = ()  # codes to remove or replace
    modifiers: tuple[str, ...] = ()
    units: int | None = None
    # references of the resources carrying the wrong code (draft orders, ChargeItems, Procedures)
    affected: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    missing: tuple[str, ...] = ()  # documentation element codes from the pumpcds CodeSystem
    params: Mapping[str, str] = field(default_factory=dict)  # values for the card template

    @property
    def sort_key(self) -> tuple[int, str]:
        order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
        return (order[self.severity], self.rule.id)
