"""Cards from findings (issue 4). The wording lives in cards/ (Jinja2 templates, see cards/README.md);
this module decides everything that is not wording: one card per problem, order, indicator,
provenance, override reasons, links and suggestions. Contract:

    builder = CardBuilder.load(settings)                  # templates compiled and checked once
    cards = builder.build(findings, request, resources)   # list of CDS Hooks 2.0 card dicts
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

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


def reasons_by_rule(book: RuleBook) -> dict[str, list[dict[str, str]]]:
    """Each rule's own override reasons (rules.yaml `override_reasons`), checked against the CodeSystem
    at start-up; a rule that names none offers every reason."""
    from ..config import ConfigError

    known = {r["code"]: r for r in override_reasons()}
    out: dict[str, list[dict[str, str]]] = {}
    for rule in book.rules:
        unknown = [c for c in rule.override_reasons if c not in known]
        if unknown:
            raise ConfigError(f"rules.yaml: {rule.id}: unknown override reason(s) {', '.join(unknown)} "
                              f"(known: {', '.join(known)})")
        out[rule.id] = [known[c] for c in rule.override_reasons] or list(known.values())
    return out


# Where a fact was seen, in words: the resource id stays in the card's extension for coders.
SOURCE_WORDS = {
    "Procedure": "procedure record", "Observation": "recorded result", "ServiceRequest": "order",
    "ChargeItem": "charge", "MedicationAdministration": "drug given", "MedicationRequest": "drug order",
    "Device": "pump record", "Coverage": "insurance", "Condition": "problem list", "Encounter": "visit",
    "Practitioner": "clinician record", "PractitionerRole": "clinician record", "DocumentReference": "note",
    "prefetch": "EHR data", "draftOrders": "orders being signed",
}
_UNIT_WORDS = ((re.compile(r"(?<![A-Za-z])(?:ug|µg|μg|mcg)(?![A-Za-z])"), "micrograms"),
               (re.compile(r"(?<![A-Za-z])mg(?![A-Za-z])"), "mg"),
               (re.compile(r"/d(?![A-Za-z])"), " a day"), (re.compile(r"/h(?![A-Za-z])"), " an hour"))


def words(text: str) -> str:
    """Units in words (ISMP: 'ug' is error-prone), internal codes with hyphens as plain words."""
    for pattern, spelled in _UNIT_WORDS:
        text = pattern.sub(spelled, text)
    return text


def source_words(reference: str) -> str:
    """'Procedure/abc' -> 'procedure record'; 'draftOrders/ServiceRequest/x' -> 'orders being signed'."""
    parts = [p for p in reference.split("/") if p]
    for part in parts:
        head = part.split(":")[0]
        if head in SOURCE_WORDS:
            return SOURCE_WORDS[head]
    return "record"


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


def _rows(f: Finding) -> list[dict[str, Any]]:
    """Every evidence row in words, once (a clinician seen in two records is one row)."""
    rows: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for e in f.evidence:
        row = {"observed": words(e.observed), "reference": source_words(e.reference), "date": e.date}
        rows.setdefault((row["observed"], row["reference"], e.date), row)
    return list(rows.values())


class CardBuilder:
    def __init__(self, settings: Settings, templates: CardTemplates, book: RuleBook, codes: CodeTable) -> None:
        self.settings = settings
        self.templates = templates
        self.book = book
        self.codes = codes
        self.reasons = reasons_by_rule(book)
        self.titles = {r.id: r.title for r in book.rules}
        self.base = settings.public_base_url.rstrip("/")
        self.max_summary = min(int(templates.setting("summary_max", MAX_SUMMARY)), MAX_SUMMARY)
        self.source_label = str(templates.setting("source_label", "pumpcds coding rules"))

    @classmethod
    def load(cls, settings: Settings, *, book: RuleBook | None = None, codes: CodeTable | None = None,
             directory: Path | None = None) -> CardBuilder:
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
            # every row is shown: nothing the card used is out of reach
            "evidence": _rows(f),
            "evidence_hidden": 0,
            "evidence_total": len(f.evidence),
            "why": words(f.params.get("reason") or self.titles.get(f.rule.id) or f.rule.id).rstrip("."),
            "params": LenientParams({k: words(v) for k, v in f.params.items()}),
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
        card["overrideReasons"] = self.reasons.get(f.rule.id) or override_reasons()
        # the audit store reads this mark to trace feedback to the rule and its version; coders find
        # the resource ids behind the evidence here, never in the card's text
        card["extension"] = {"pumpcds": {
            "ruleId": f.rule.id, "ruleVersion": f.rule.version, "kind": f.kind.value,
            **({"evidence": [{**({"reference": e.reference} if e.reference else {}), "observed": e.observed,
                              **({"date": e.date} if e.date else {})} for e in f.evidence]} if f.evidence else {}),
            **({"missing": list(f.missing)} if f.missing else {}),
            **({"affected": list(f.affected)} if f.affected else {}),
        }}
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
        """The help page of every code the card names (the code to bill and the codes it replaces)."""
        named = [c for c in dict.fromkeys((f.code, *f.replaces)) if c and c in self.codes.codes]
        links: list[dict[str, Any]] = [
            {"label": self.templates.say("links.document", {**ctx, "code": c}),
             "url": f"{self.base}/docs/codes/{c}", "type": "absolute"} for c in named]
        app = self.settings.documentation_app_url
        if app and named and (f.missing or f.kind == FindingKind.MISSING_DOCUMENTATION):
            links.append({"label": self.templates.say("links.smart", ctx), "url": app, "type": "smart",
                          "appContext": json.dumps({"code": f.code, "missing": list(f.missing)})})
        return links
