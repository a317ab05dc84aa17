"""Cards from findings (issue 4): wording per finding kind, provenance, override reasons,
documentation links and suggestions. Contract:

    builder = CardBuilder.load(settings)
    cards = builder.build(findings, request, resources)  # list of CDS Hooks 2.0 card dicts
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from ..coding.findings import Finding, FindingKind
from ..config import Settings
from ..fhir.resources import VisitResources
from . import suggestions as sugg
from .validation import HookRequest

TOPIC_SYSTEM = "http://pumpcds.org/fhir/CodeSystem/card-topic"
OVERRIDE_SYSTEM = "http://pumpcds.org/fhir/CodeSystem/override-reason"
OVERRIDE_CODESYSTEM = Path(__file__).parent / "terminology" / "override-reason.codesystem.json"
VERIFICATION = {"V": "verified", "V2": "secondary source", "U": "unverified", "I": "inference"}
MAX_SUMMARY = 139


def override_reasons() -> list[dict[str, str]]:
    """The override-reason Codings, read from the project CodeSystem so both stay in step."""
    cs = json.loads(OVERRIDE_CODESYSTEM.read_text(encoding="utf-8"))
    return [{"system": OVERRIDE_SYSTEM, "code": c["code"], "display": c["display"]} for c in cs["concept"]]


def _clip(text: str, limit: int = MAX_SUMMARY) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _cell(text: Any) -> str:
    """Markdown-safe table cell: no pipes or line breaks."""
    return " ".join(str(text).replace("|", "\\|").split()) or "-"


def summary(f: Finding) -> str:
    """What to do, with the code, readable in two seconds; always < 140 characters."""
    code = f.code or ""
    old = ", ".join(f.replaces)
    mods = "-".join(f.modifiers)
    p = f.params
    if f.rule.id == "NCCI-MUE" and code:
        text = f"{code}: at most {f.units or p.get('mue', '?')} units per day, {p.get('billed_units', 'more')} billed"
    elif f.rule.id == "MOD-INDICATOR" and code:
        text = f"Remove modifier {mods} from {code}"
    elif f.rule.id == "DRUG-JW-JZ" and code:
        text = f"Add modifier {mods or 'JW/JZ'} to drug code {code}" + (f" ({f.units} units wasted)" if f.units else "")
    elif f.rule.id == "EM-SAME-DAY" and f.kind == FindingKind.REPLACE_CODE and code:
        text = f"Add modifier 25 to {code}: separate problem documented"
    elif f.kind == FindingKind.RECOMMENDED_CODE and code:
        text = f"Code {code} for this visit" + (f" ({f.units} units)" if f.units else "")
    elif f.kind == FindingKind.REPLACE_CODE and code:
        text = f"Code {code} for this visit, not {old}" if old else f"Code {code} for this visit"
    elif f.kind == FindingKind.DROP_CODE:
        text = f"Remove {old or code}" + (f": included in {code}" if code and old else "")
    elif f.kind == FindingKind.MISSING_DOCUMENTATION:
        text = f"Document {len(f.missing)} more item(s) to support {code}" if code else "Documentation incomplete"
    elif f.kind == FindingKind.DATA_QUALITY:
        text = f"{len(f.evidence)} item(s) of the record could not be used for coding"
    elif f.rule.id == "NCCI-PTP" and p.get("pair"):
        text = f"{p['pair']}: billable together only with a bypass modifier"
    else:
        text = f"Check {code} for this visit" if code else f"Check coding: {f.rule.id}"
    return _clip(text)


def detail(f: Finding, title: str | None) -> str:
    """GitHub-flavoured Markdown: why, the evidence table, the rule and its standing."""
    from ..coding.terminology import display

    lines: list[str] = []
    why = f.params.get("reason") or title or f.rule.id
    lines.append(why.rstrip(".") + ".")
    if f.missing:
        lines += ["", "Not yet documented:"] + [f"- {display(m)}" for m in f.missing]
    if f.evidence:
        lines += ["", "| What was seen | From | Date |", "| --- | --- | --- |"]
        lines += [f"| {_cell(e.observed)} | {_cell(e.reference)} | {_cell(e.date or '-')} |" for e in f.evidence]
    level = VERIFICATION.get(f.rule.verification, f.rule.verification)
    lines += ["", f"Rule {f.rule.id} v{f.rule.version} ({level}); source: {f.rule.source or 'see rule page'}."]
    return "\n".join(lines)


class CardBuilder:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reasons = override_reasons()
        try:
            from ..coding.rulebook import default_rulebook

            self.titles = {r.id: r.title for r in default_rulebook().rules}
        except Exception:  # rule titles are decoration; a card must not fail for them
            self.titles = {}

    @classmethod
    def load(cls, settings: Settings) -> "CardBuilder":
        return cls(settings)

    def build(self, findings: list[Finding], request: HookRequest, resources: VisitResources) -> list[dict[str, Any]]:
        merged: dict[tuple[str, str | None], Finding] = {}
        for f in sorted(findings, key=lambda f: f.sort_key):
            key = (f.rule.id, f.code)
            if key in merged:  # same rule and code: one card, evidence and missing items joined
                a = merged[key]
                from dataclasses import replace

                merged[key] = replace(a, evidence=a.evidence + tuple(e for e in f.evidence if e not in a.evidence),
                                      missing=a.missing + tuple(m for m in f.missing if m not in a.missing),
                                      affected=a.affected + tuple(r for r in f.affected if r not in a.affected))
            else:
                merged[key] = f
        return [self._card(f, request, resources) for f in sorted(merged.values(), key=lambda f: f.sort_key)]

    def _card(self, f: Finding, request: HookRequest, resources: VisitResources) -> dict[str, Any]:
        title = self.titles.get(f.rule.id)
        source: dict[str, Any] = {"label": "pumpcds coding rules",
                                  "topic": {"system": TOPIC_SYSTEM, "code": f.rule.id, "display": title or f.rule.id}}
        if f.rule.url:
            source["url"] = f.rule.url
        card: dict[str, Any] = {
            "uuid": str(uuid.uuid4()),
            "summary": summary(f),
            "detail": detail(f, title),
            "indicator": f.severity.value,
            "source": source,
            "overrideReasons": self.reasons,
            "extension": {"pumpcds": {"ruleId": f.rule.id, "ruleVersion": f.rule.version}},
        }
        try:
            found = sugg.build(f, request, resources)
        except Exception:  # a suggestion we cannot build safely is left out, the card still informs
            found = []
        if found:
            found[0]["isRecommended"] = True
            card["suggestions"] = found
            card["selectionBehavior"] = "at-most-one"
        links = self._links(f)
        if links:
            card["links"] = links
        return card

    def _links(self, f: Finding) -> list[dict[str, Any]]:
        if not f.code or (f.code_system and f.code_system not in sugg.BILLING_SYSTEMS):
            return []
        base = self.settings.public_base_url.rstrip("/")
        links: list[dict[str, Any]] = [{"label": f"What to document for {f.code}",
                                        "url": f"{base}/docs/codes/{f.code}", "type": "absolute"}]
        app = getattr(self.settings, "documentation_app_url", "")
        if app:
            ctx = {"code": f.code, "missing": list(f.missing)}
            links.append({"label": f"Open documentation checklist for {f.code}", "url": app, "type": "smart",
                          "appContext": json.dumps(ctx)})
        return links
