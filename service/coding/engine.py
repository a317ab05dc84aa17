"""The coding engine: `evaluate(visit, rules) -> findings`, pure, plus the app-facing facade.

    engine = CodingEngine.load(settings)          # reads rule data and CMS files once
    assessment = engine.assess(visit_resources)   # facts, then rules; no I/O

The engine knows no rule and no code. Each rule in rules.yaml names a `check` registered in
service/coding/checks/ and gives it the params it declares; the check's stage sets when the rule
runs (the pump-family decision first, then the other lines, the payer edits, the checklist), and
within a stage rules run in rules.yaml order, each seeing the findings before it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..config import ConfigError, Settings
from ..fhir.resources import VisitResources
from .checks import REGISTRY, Check, Stage
from .checks.base import Run
from .checks.selection import decide, preempting_codes, service_codes
from .cms import CmsTables, load_tables
from .codetable import CodeTable, default_code_table
from .facts import VisitReader
from .findings import Finding
from .payers import PayerProfile, PayerProfiles
from .rulebook import RULES_PATH, Rule, RuleBook, RuleBookError
from .visit import PumpVisit
from .vocabulary import Vocabulary

__all__ = ["Assessment", "CodingEngine", "PayerProfile", "PayerProfiles", "RuleSet", "evaluate"]

log = logging.getLogger("pumpcds.coding")


@dataclass(frozen=True)
class RuleSet:
    """Everything `evaluate` needs besides the visit: rule data, code table, CMS tables, payer profiles."""

    book: RuleBook
    codes: CodeTable
    cms: CmsTables
    payers: PayerProfiles
    prompts: frozenset[str] = frozenset()  # good-practice elements the site puts on cards too

    @cached_property
    def on_test_data(self) -> frozenset[str]:
        """Ids of the rules whose check reads a CMS table loaded from a bundled synthetic file."""
        synthetic = {name for name in ("ptp", "mue", "mpfs")
                     if (src := getattr(self.cms, name).source) is not None and src.synthetic}
        return frozenset(r.id for r in self.book.rules if synthetic & set(REGISTRY[r.check].cms_tables))

    @cached_property
    def plan(self) -> tuple[tuple[Rule, Check], ...]:
        """Every rule with its check, by stage, in rules.yaml order within a stage."""
        return tuple(sorted(((r, REGISTRY[r.check]) for r in self.book.rules), key=lambda rc: rc[1].stage))

    @cached_property
    def service_codes(self) -> frozenset[str]:
        """The pump service codes the pump-family decision chooses among."""
        return service_codes(self.book.rules)

    @cached_property
    def pump_codes(self) -> frozenset[str]:
        """Codes that make a visit a pump visit: the service codes and the implant codes."""
        return self.service_codes | preempting_codes(self.book.rules)

    def check(self) -> None:
        """Every code and documentation element a rule names is in codes.yaml, and every rule
        codes.yaml says asks for an element exists: fail at start, not on a visit."""
        for rule in self.book.rules:
            codes, elements = REGISTRY[rule.check].named(rule.params)
            unknown = [c for c in codes if c not in self.codes.codes]
            if unknown:
                raise RuleBookError(f"{self.book.path}: rule {rule.id}: code(s) {', '.join(unknown)} not in codes.yaml")
            unknown = [e for e in elements if e not in self.codes.policy]
            if unknown:
                raise RuleBookError(f"{self.book.path}: rule {rule.id}: documentation element(s) {', '.join(unknown)} "
                                    "not in codes.yaml documentation_policy")
        ids = {r.id for r in self.book.rules}
        for element, policy in self.codes.policy.items():
            if policy.asked_by and policy.asked_by not in ids:
                raise RuleBookError(f"codes.yaml: documentation_policy {element}: asked_by names rule "
                                    f"{policy.asked_by}, which is not in {self.book.path}")


def evaluate(visit: PumpVisit, rules: RuleSet) -> list[Finding]:
    """All findings for one visit, most important first. Pure: same visit and rules, same findings."""
    day = visit.date_of_service
    profile, _ = rules.payers.for_visit(visit)
    run = Run(visit, rules, profile)
    in_force = [(rule, check) for rule, check in rules.plan if rule.in_force(day)]
    decide(run, [rule for rule, check in in_force if check.stage is Stage.DECISION])
    for rule, check in in_force:
        if check.evaluate is not None:
            check.evaluate(run, rule)
    return sorted(run.findings, key=lambda f: f.sort_key)


@dataclass
class Assessment:
    findings: list[Finding]
    visit: PumpVisit | None = None


def _site_prompts(settings: Settings, codes: CodeTable) -> frozenset[str]:
    unknown = [e for e in settings.documentation_prompts if e not in codes.policy]
    if unknown:
        raise ConfigError(f"documentation_prompts: unknown documentation element(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(codes.policy))})")
    return frozenset(settings.documentation_prompts)


class CodingEngine:
    """Loads rule data, code tables, vocabulary and CMS files once; assesses visits without I/O."""

    def __init__(self, rules: RuleSet, reader: VisitReader) -> None:
        self.rules = rules
        self.reader = reader

    @classmethod
    def load(cls, settings: Settings, rules_path: Path | None = None) -> CodingEngine:
        book = RuleBook.load(rules_path or RULES_PATH, base_url=settings.public_base_url)
        codes = default_code_table().with_descriptors(settings.cpt_descriptor_path)
        rules = RuleSet(book, codes, load_tables(settings), PayerProfiles.load(settings.default_payer_profile),
                        _site_prompts(settings, codes))
        rules.check()
        reader = VisitReader(Vocabulary.load(settings.site_mapping_path), codes)
        return cls(rules, reader)

    def assess(self, resources: VisitResources) -> Assessment:
        visit = self.reader.read(resources)
        findings = evaluate(visit, self.rules)
        log.debug("assessed visit: rules=%s", ",".join(f.rule.id for f in findings))
        return Assessment(findings=findings, visit=visit)
