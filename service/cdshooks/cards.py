"""Cards from findings (issue 4). The wording lives in cards/ (Jinja2 templates, see cards/README.md);
this module decides everything that is not wording: one card per problem, order, indicator,
provenance, override reasons, links and suggestions. Contract:

    builder = CardBuilder.load(settings)                  # templates compiled and checked once
    cards = builder.build(findings, request, resources)   # list of CDS Hooks 2.0 card dicts
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..coding.codetable import CPT_SYSTEM, HCPCS_SYSTEM, CodeTable, default_code_table
from ..coding.findings import Finding, FindingKind, Severity
from ..coding.rulebook import VERIFICATION, RuleBook
from ..coding.terminology import display
from ..config import Settings
from ..fhir.resources import VisitResources
from . import suggestions as sugg
from .cardtemplates import CardTemplates, LenientParams, MdSafe, cards_dir, one_line
from .validation import HookRequest

log = logging.getLogger("pumpcds.cards")

TOPIC_SYSTEM = "http://pumpcds.org/fhir/CodeSystem/card-topic"
OVERRIDE_SYSTEM = "http://pumpcds.org/fhir/CodeSystem/override-reason"
OVERRIDE_CODESYSTEM = Path(__file__).parent / "terminology" / "override-reason.codesystem.json"
MAX_SUMMARY = 139  # CDS Hooks: summary under 140 characters
TEST_DATA_LABEL = "test data: synthetic CMS table, not a CMS release"
SYSTEM_LABELS = {CPT_SYSTEM: "CPT", HCPCS_SYSTEM: "HCPCS", "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM"}
_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
# within one indicator: code changes first, then warnings, then documentation prompts, then input problems
_KIND_RANK = {FindingKind.REPLACE_CODE: 0, FindingKind.DROP_CODE: 0, FindingKind.RECOMMENDED_CODE: 0,
              FindingKind.WARNING: 1, FindingKind.MISSING_DOCUMENTATION: 2, FindingKind.DATA_QUALITY: 3}


def override_reasons() -> list[dict[str, str]]:
    """The override-reason Codings, read from the project CodeSystem so both stay in step."""
    cs = json.loads(OVERRIDE_CODESYSTEM.read_text(encoding="utf-8"))
    return [{"system": OVERRIDE_SYSTEM, "code": c["code"], "display": c["display"]} for c in cs["concept"]]


def clip(text: str, limit: int = MAX_SUMMARY) -> str:
    """Last resort only: the tests keep every template under the limit with the longest values."""
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def importance(f: Finding) -> tuple[int, int, str]:
    return (_SEVERITY_RANK[f.severity], _KIND_RANK.get(f.kind, 9), f.rule.id)


def _union(a: Iterable[Any], b: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(dict.fromkeys((*a, *b)))


def merge(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per problem: the same rule, code and kind is one card (evidence, missing items,
    replaced codes and affected resources joined), most important first."""
    merged: dict[tuple[str, str | None, str], Finding] = {}
    for f in sorted(findings, key=importance):
        key = (f.rule.id, f.code, f.kind.value)
        a = merged.get(key)
        merged[key] = f if a is None else replace(
            a, replaces=_union(a.replaces, f.replaces), modifiers=_union(a.modifiers, f.modifiers),
            affected=_union(a.affected, f.affected), evidence=_union(a.evidence, f.evidence),
            missing=_union(a.missing, f.missing), units=a.units if a.units is not None else f.units,
            params={**f.params, **a.params})
    return sorted(merged.values(), key=importance)


class CardBuilder:
    def __init__(self, settings: Settings, templates: CardTemplates, book: RuleBook, codes: CodeTable) -> None:
        self.settings = settings
        self.templates = templates
        self.book = book
        self.codes = codes
        self.reasons = override_reasons()
        self.titles = {r.id: r.title for r in book.rules}
        self.base = settings.public_base_url.rstrip("/")
        self.max_summary = min(int(templates.setting("summary_max", MAX_SUMMARY)), MAX_SUMMARY)
        self.evidence_rows = max(1, int(templates.setting("evidence_rows", 8)))
        self.source_label = str(templates.setting("source_label", "pumpcds coding rules"))

    @classmethod
    def load(cls, settings: Settings, *, book: RuleBook | None = None, codes: CodeTable | None = None,
             directory: Path | None = None) -> "CardBuilder":
        """Read rules, codes and every card template once; a missing or broken template raises
        CardTemplateError (a ConfigError naming the file) here, at start-up."""
        book = book or RuleBook.load(base_url=settings.public_base_url)
        codes = codes or default_code_table().with_descriptors(settings.cpt_descriptor_path)
        templates = CardTemplates.load(directory or cards_dir(settings), [r.id for r in book.rules])
        return cls(settings, templates, book, codes)

    # -- cards -----------------------------------------------------------------------------
    def build(self, findings: list[Finding], request: HookRequest, resources: VisitResources) -> list[dict[str, Any]]:
        return [self.card(f, request, resources) for f in merge(findings)]

    def context(self, f: Finding) -> dict[str, Any]:
        """Everything a template may use (cards/README.md lists it)."""
        rows = self.evidence_rows
        rule_url = f.rule.url or f"{self.base}/docs/rules/{f.rule.id}"
        code_in_table = bool(f.code and f.code in self.codes.codes)
        # a finding resting on a bundled synthetic CMS table is test data, whatever the rule's status
        label = (TEST_DATA_LABEL if f.params.get("test_data")
                 else VERIFICATION.get(f.rule.verification, f.rule.verification))
        return {
            "rule": {"id": f.rule.id, "version": f.rule.version, "title": self.titles.get(f.rule.id, f.rule.id),
                     "verification": f.rule.verification,
                     "verification_label": label,
                     "source": f.rule.source or "see the rule page", "url": MdSafe(rule_url)},
            "kind": f.kind.value,
            "severity": f.severity.value,
            "code": f.code,
            "code_system": SYSTEM_LABELS.get(f.code_system or "", f.code_system),
            "code_summary": self.codes.description(f.code) if code_in_table and f.code else "",
            "code_url": MdSafe(f"{self.base}/docs/codes/{f.code}") if code_in_table else None,
            "replaces": list(f.replaces),
            "modifiers": list(f.modifiers),
            "units": f.units,
            "missing": [{"code": m, "display": display(m)} for m in f.missing],
            "evidence": [{"observed": e.observed, "reference": e.reference, "date": e.date} for e in f.evidence[:rows]],
            "evidence_hidden": max(0, len(f.evidence) - rows),
            "evidence_total": len(f.evidence),
            "why": (f.params.get("reason") or self.titles.get(f.rule.id) or f.rule.id).rstrip("."),
            "params": LenientParams(f.params),
        }

    def card(self, f: Finding, request: HookRequest, resources: VisitResources) -> dict[str, Any]:
        ctx = self.context(f)
        summary, detail = self._wording(f, ctx)
        card: dict[str, Any] = {"uuid": str(uuid.uuid4()), "summary": summary}
        if detail:
            card["detail"] = detail
        card["indicator"] = f.severity.value
        card["source"] = {
            "label": self.source_label,
            "url": str(ctx["rule"]["url"]),
            "topic": {"system": TOPIC_SYSTEM, "code": f.rule.id, "display": ctx["rule"]["title"]},
        }
        card["overrideReasons"] = self.reasons
        # the audit store reads this mark to trace feedback to the rule and its version
        card["extension"] = {"pumpcds": {"ruleId": f.rule.id, "ruleVersion": f.rule.version}}
        try:
            found = sugg.build(f, request, resources, lambda key: self.templates.say(key, ctx))
        except Exception:  # a suggestion we cannot build safely is left out; the card still informs
            log.exception("suggestion failed for rule=%s kind=%s", f.rule.id, f.kind.value)
            found = []
        if found:
            found[0]["isRecommended"] = True
            card["suggestions"] = found
            card["selectionBehavior"] = "at-most-one"
        links = self._links(f, ctx)
        if links:
            card["links"] = links
        return card

    def _wording(self, f: Finding, ctx: Mapping[str, Any]) -> tuple[str, str]:
        try:
            summary = self.templates.render(f.rule.id, "summary", f.kind.value, ctx)
            detail = self.templates.render(f.rule.id, "detail", f.kind.value, ctx)
        except Exception:  # templates were test-rendered at start; this is a data surprise, not a typo
            log.exception("card template failed for rule=%s kind=%s", f.rule.id, f.kind.value)
            return clip(ctx["rule"]["title"], self.max_summary), ""
        text = one_line(summary)
        if len(text) > self.max_summary:
            log.warning("summary clipped for rule=%s kind=%s (%d characters)", f.rule.id, f.kind.value, len(text))
        return clip(text, self.max_summary) or clip(ctx["rule"]["title"], self.max_summary), detail

    def _links(self, f: Finding, ctx: Mapping[str, Any]) -> list[dict[str, Any]]:
        if not ctx["code_url"]:
            return []
        links: list[dict[str, Any]] = [{"label": self.templates.say("links.document", ctx),
                                        "url": str(ctx["code_url"]), "type": "absolute"}]
        app = self.settings.documentation_app_url
        if app and (f.missing or f.kind == FindingKind.MISSING_DOCUMENTATION):
            links.append({"label": self.templates.say("links.smart", ctx), "url": app, "type": "smart",
                          "appContext": json.dumps({"code": f.code, "missing": list(f.missing)})})
        return links
