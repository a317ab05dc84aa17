"""Documentation pages the cards link to: /docs/codes/<code> (what to document, from codes.yaml) and
/docs/rules/<id> (the rule's identity and data, from rules.yaml). The same data the engine runs on,
so a page never disagrees with a card. HTML comes from cards/pages/*.html.j2 (autoescaped);
JSON is the page data itself.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from ..coding.codetable import CodeTable
from ..coding.rulebook import TEST_DATA_LABEL, VERIFICATION, Rule, RuleBook
from ..coding.terminology import concepts
from .cardtemplates import BYTECODE_CACHE, CardTemplateError

PAGES = ("code", "codes", "rule", "rules", "error")
SYSTEM_LABELS = {"http://www.ama-assn.org/go/cpt": "CPT",
                 "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "HCPCS"}


def _display(code: str) -> str:
    c = concepts().get(code)
    return c.display if c else code


def _text(value: Any) -> str:
    """A rule parameter in plain words: lists joined, mappings as 'key: value'."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value) or "none"
    if isinstance(value, Mapping):
        return "; ".join(f"{k.replace('_', ' ')}: {_text(v)}" for k, v in value.items()) or "none"
    if isinstance(value, dt.date):
        return value.isoformat()
    return _display(value) if isinstance(value, str) else str(value)  # concept codes in words


def _param_lines(name: str, value: Any) -> list[str]:
    if name == "rows" and isinstance(value, list):  # the selection matrix: condition -> code
        return [f"{_text(row.get('when', {})) or 'always'} → {row.get('code') or 'no code of this family'}"
                for row in value if isinstance(row, Mapping)]
    if isinstance(value, Mapping) and value and all(isinstance(v, (list, tuple)) for v in value.values()):
        return [f"{k.replace('_', ' ')}: {_text(v)}" for k, v in value.items()]
    return [_text(value)]


@dataclass(frozen=True)
class DocPages:
    env: jinja2.Environment
    book: RuleBook
    codes: CodeTable
    base: str
    # rules resting on a bundled synthetic CMS table: labelled test data, never "verified"
    on_test_data: frozenset[str] = frozenset()

    @classmethod
    def load(cls, directory: Path, book: RuleBook, codes: CodeTable, base_url: str,
             on_test_data: Iterable[str] = ()) -> DocPages:
        """Compile every page template and render every page once: a broken page fails at start."""
        root = Path(directory) / "pages"
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(root)), autoescape=True, bytecode_cache=BYTECODE_CACHE,
                                 undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        pages = cls(env, book, codes, base_url.rstrip("/"), frozenset(on_test_data))
        for name in PAGES:
            path = root / f"{name}.html.j2"
            try:
                env.get_template(f"{name}.html.j2")
            except jinja2.TemplateNotFound:
                raise CardTemplateError(f"{path}: page template missing") from None
            except jinja2.TemplateSyntaxError as exc:
                raise CardTemplateError(f"{exc.filename or path}: line {exc.lineno}: {exc.message}") from None
        checks: list[tuple[str, Mapping[str, Any]]] = [
            ("codes", pages.codes_index()), ("rules", pages.rules_index()), ("error", {"message": "not found"}),
            *(("code", pages.code(code) or {}) for code in codes.codes),
            *(("rule", pages.rule(rule.id) or {}) for rule in book.rules)]
        for name, data in checks:
            try:
                pages.html(name, data)
            except jinja2.TemplateError as exc:
                raise CardTemplateError(f"{root / (name + '.html.j2')}: page template does not render: {exc.message}") from None
        return pages

    # -- page data (also the JSON answer) ----------------------------------------------------
    def code(self, code: str) -> dict[str, Any] | None:
        info = self.codes.get(code)
        if info is None:
            return None
        requirements: list[str] = []
        if info.pump_kinds:
            requirements.append("Device: " + ", ".join(_display(k) for k in info.pump_kinds))
        if info.targets:
            requirements.append("Delivered into: " + ", ".join(_display(t) for t in info.targets))
        for label, value in (("Reprogrammed", info.reprogrammed), ("Refilled", info.refilled),
                             ("Needs a physician's or QHP's skill", info.requires_qhp)):
            if value is not None:
                requirements.append(f"{label}: {'yes' if value else 'no'}")
        related = []
        if info.staff_code:
            related.append({"code": info.staff_code, "why": "the same service when clinical staff do it"})
        if info.qhp_code:
            related.append({"code": info.qhp_code, "why": "the same service when it needs a physician's or QHP's skill"})
        return {
            "code": info.code,
            "system": SYSTEM_LABELS.get(info.system, info.system),
            "family": info.family,
            "description": self.codes.description(info.code),
            "verification": info.verification,
            "verification_label": VERIFICATION.get(info.verification, info.verification),
            "source": info.source,
            "checklist": [self._element(info.code, c) for c in self.codes.checklist(info.code)],
            "requirements": requirements,
            "related": related,
            "url": f"{self.base}/docs/codes/{info.code}",
        }

    def _element(self, code: str, c: Any) -> dict[str, Any]:
        """One checklist item with its alert level: required (a card when missing) or good practice."""
        policy = self.codes.policy.get(c.code)
        required = self.codes.required(code, c.code)
        return {"code": c.code, "display": c.display, "definition": c.definition,
                "level": "required" if required else "good practice",
                "source": policy.source if policy else ""}

    def codes_index(self) -> dict[str, Any]:
        return {"codes": [{"code": c, "description": self.codes.description(c),
                           "checklist_count": len(self.codes.checklist(c)), "url": f"{self.base}/docs/codes/{c}"}
                          for c in self.codes.codes]}

    def _rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.book.rules if r.id == rule_id), None)

    def rule(self, rule_id: str) -> dict[str, Any] | None:
        r = self._rule(rule_id)
        if r is None:
            return None
        return {
            "id": r.id, "version": r.version, "title": r.title, "check": r.check,
            "effective": r.effective.isoformat(), "terminates": r.terminates.isoformat() if r.terminates else None,
            "severity": r.severity.value, "verification": r.verification,
            "verification_label": self._label(r), "source": r.source,
            "params": [{"name": k.replace("_", " "), "lines": _param_lines(k, v)} for k, v in r.params.items()],
            "url": f"{self.base}/docs/rules/{r.id}",
        }

    def rules_index(self) -> dict[str, Any]:
        return {"rulebookVersion": self.book.version,
                "rules": [{"id": r.id, "version": r.version, "title": r.title, "severity": r.severity.value,
                           "verification_label": self._label(r),
                           "url": f"{self.base}/docs/rules/{r.id}"} for r in self.book.rules]}

    def _label(self, r: Rule) -> str:
        return TEST_DATA_LABEL if r.id in self.on_test_data else VERIFICATION.get(r.verification, r.verification)

    # -- HTML ---------------------------------------------------------------------------------
    def html(self, page: str, data: Mapping[str, Any]) -> str:
        return self.env.get_template(f"{page}.html.j2").render(
            page=data, base=self.base, rulebook_version=self.book.version, codetable_version=self.codes.version)

