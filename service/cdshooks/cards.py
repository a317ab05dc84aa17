"""Cards from findings (issue 4). The wording lives in cards/ (Jinja2 templates, see cards/README.md);
this module decides everything that is not wording: one card per problem, order, indicator,
provenance, override reasons, links and suggestions. Contract:

    builder = CardBuilder.load(settings, book, codes)    # templates compiled and checked once
    cards = builder.build(findings, request, resources, visit)   # CDS Hooks 2.0 `Card` models
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from ..coding.codetable import CPT_SYSTEM, HCPCS_SYSTEM, CodeTable
from ..coding.findings import Finding, FindingKind, Severity
from ..coding.rulebook import TEST_DATA_LABEL, VERIFICATION, RuleBook
from ..coding.terminology import display
from ..coding.visit import PumpVisit
from ..config import Settings
from ..fhir.resources import VisitResources
from ..fhir.validate import InvalidResource
from . import suggestions as sugg
from .cardtemplates import CardTemplates, LenientParams, MdSafe, cards_dir, one_line
from .models import MAX_SUMMARY, Card, CardMark, Coding, EvidenceRow, InvalidResponse, Link, Source
from .validation import HookRequest

log = logging.getLogger("pumpcds.cards")

TOPIC_SYSTEM = "http://pumpcds.org/fhir/CodeSystem/card-topic"
OVERRIDE_SYSTEM = "http://pumpcds.org/fhir/CodeSystem/override-reason"
OVERRIDE_CODESYSTEM = Path(__file__).parent / "terminology" / "override-reason.codesystem.json"
SYSTEM_LABELS = {CPT_SYSTEM: "CPT", HCPCS_SYSTEM: "HCPCS", "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM"}
_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
# within one indicator: code changes first, then warnings, then documentation prompts, then input problems
_KIND_RANK = {FindingKind.REPLACE_CODE: 0, FindingKind.DROP_CODE: 0, FindingKind.RECOMMENDED_CODE: 0,
              FindingKind.WARNING: 1, FindingKind.MISSING_DOCUMENTATION: 2, FindingKind.DATA_QUALITY: 3}


@cache
def override_reasons() -> tuple[Coding, ...]:
    """The override-reason Codings, read once from the project CodeSystem so both stay in step."""
    cs = json.loads(OVERRIDE_CODESYSTEM.read_text(encoding="utf-8"))
    return tuple(Coding(OVERRIDE_SYSTEM, c["code"], c["display"]) for c in cs["concept"])


def reasons_by_rule(book: RuleBook) -> dict[str, tuple[Coding, ...]]:
    """Each rule's own override reasons (rules.yaml `override_reasons`), checked against the CodeSystem
    at start-up; a rule that names none offers every reason."""
    from ..config import ConfigError

    known = {r.code: r for r in override_reasons()}
    out: dict[str, tuple[Coding, ...]] = {}
    for rule in book.rules:
        unknown = [c for c in rule.override_reasons if c not in known]
        if unknown:
            raise ConfigError(f"rules.yaml: {rule.id}: unknown override reason(s) {', '.join(unknown)} "
                              f"(known: {', '.join(known)})")
        out[rule.id] = tuple(known[c] for c in rule.override_reasons) or override_reasons()
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


_UNIT_MARKS = re.compile("ug|µg|μg|mcg|mg|/d|/h")
_WORDED: dict[str, str] = {}  # text -> words(text): evidence statements recur across visits (bounded)


def words(text: str) -> str:
    """Units in words (ISMP: 'ug' is error-prone), internal codes with hyphens as plain words."""
    found = _WORDED.get(text)
    if found is not None:
        return found
    worded = text
    if _UNIT_MARKS.search(text):  # most texts name no unit
        for pattern, spelled in _UNIT_WORDS:
            worded = pattern.sub(spelled, worded)
    if len(_WORDED) >= 4096:
        _WORDED.clear()
    _WORDED[text] = worded
    return worded


def source_words(reference: str) -> str:
    """'Procedure/abc' -> 'procedure record'; 'draftOrders/ServiceRequest/x' -> 'orders being signed'."""
    head = reference.partition("/")[0].partition(":")[0]
    if head in SOURCE_WORDS:  # the usual case: the first part names it
        return SOURCE_WORDS[head]
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
        observed, where = words(e.observed), source_words(e.reference)
        rows.setdefault((observed, where, e.date), {"observed": observed, "reference": where, "date": e.date})
    return list(rows.values())


class CardBuilder:
    def __init__(self, settings: Settings, templates: CardTemplates, book: RuleBook, codes: CodeTable) -> None:
        self.settings = settings
        self.templates = templates
        self.codes = codes
        self.reasons = reasons_by_rule(book)
        self.titles = {r.id: r.title for r in book.rules}
        self.base = settings.public_base_url.rstrip("/")
        self.max_summary = min(int(templates.setting("summary_max", MAX_SUMMARY)), MAX_SUMMARY)
        self.source_label = str(templates.setting("source_label", "pumpcds coding rules"))
        app = settings.documentation_app_url
        if app and not app.startswith(("http://", "https://")):
            from ..config import ConfigError

            raise ConfigError(f"documentation_app_url must be an absolute http(s) URL, got {app!r}")

    @classmethod
    def load(cls, settings: Settings, book: RuleBook, codes: CodeTable, *, directory: Path | None = None) -> CardBuilder:
        """Read every card template once (rules and codes are the engine's, loaded once); a missing
        or broken template raises CardTemplateError (a ConfigError naming the file) here, at start-up."""
        templates = CardTemplates.load(directory or cards_dir(settings), [r.id for r in book.rules])
        return cls(settings, templates, book, codes)

    # -- cards -----------------------------------------------------------------------------
    def build(self, findings: list[Finding], request: HookRequest, resources: VisitResources,
              visit: PumpVisit | None = None) -> list[Card]:
        """One card per problem, most important first; suggestions read the visit's typed facts."""
        facts = sugg.VisitFacts.of(visit, request.context)
        cards = []
        for f in merge(findings):
            try:
                cards.append(self.card(f, request, resources, facts))
            except InvalidResponse:  # a bug, not data: never answer with a card that breaks the spec
                log.exception("card for rule=%s kind=%s breaks a CDS Hooks rule; left out", f.rule.id, f.kind.value)
        return cards

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

    def card(self, f: Finding, request: HookRequest, resources: VisitResources,
             facts: sugg.VisitFacts | None = None) -> Card:
        ctx = self.context(f)
        summary, detail = self._wording(f, ctx)
        # the audit store reads this mark to trace feedback to the rule and its version; coders find
        # the resource ids behind the evidence here, never in the card's text
        mark = CardMark(f.rule.id, f.rule.version, f.kind.value,
                        evidence=tuple(EvidenceRow(e.observed, e.reference or None, e.date or None) for e in f.evidence),
                        missing=tuple(f.missing), affected=tuple(f.affected))
        card = Card(
            summary=summary, detail=detail or None, indicator=f.severity.value,
            source=Source(self.source_label, str(ctx["rule"]["url"]),
                          Coding(TOPIC_SYSTEM, f.rule.id, ctx["rule"]["title"])),
            override_reasons=self.reasons.get(f.rule.id) or override_reasons(),
            links=self._links(f, ctx), mark=mark,
        )
        try:
            found = sugg.build(f, request.spec.edits, resources, facts or sugg.VisitFacts.of(None, request.context),
                               lambda key: self.templates.say(key, ctx))
            if found:
                card = replace(card, suggestions=(found[0].recommended(), *found[1:]), selection_behavior="at-most-one")
        except InvalidResource:  # the EHR's resource is not valid R4: nothing is sent back to edit it
            log.warning("no suggestion for rule=%s kind=%s: the resource to edit is not valid FHIR R4",
                        f.rule.id, f.kind.value)
        except Exception:  # a suggestion we cannot build safely is left out; the card still informs
            log.exception("suggestion failed for rule=%s kind=%s", f.rule.id, f.kind.value)
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

    def _links(self, f: Finding, ctx: Mapping[str, Any]) -> tuple[Link, ...]:
        """The help page of every code the card names (the code to bill and the codes it replaces)."""
        named = [c for c in dict.fromkeys((f.code, *f.replaces)) if c and c in self.codes.codes]
        links = [Link(self.templates.say("links.document", {**ctx, "code": c}), f"{self.base}/docs/codes/{c}")
                 for c in named]
        app = self.settings.documentation_app_url
        if app and named and (f.missing or f.kind == FindingKind.MISSING_DOCUMENTATION):
            links.append(Link(self.templates.say("links.smart", ctx), app, "smart",
                              json.dumps({"code": f.code, "missing": list(f.missing)})))
        return tuple(links)
