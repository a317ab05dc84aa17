"""The rule book (service/coding/data/rules.yaml): identity, dates, provenance and data of each rule."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .findings import RuleRef, Severity

RULES_PATH = Path(__file__).parent / "data" / "rules.yaml"
VERIFICATION = {"V": "verified", "V2": "secondary source", "U": "unverified", "I": "inference"}


@dataclass(frozen=True)
class Rule:
    id: str
    version: str
    title: str
    check: str  # the evaluator in service.coding.engine
    effective: dt.date
    verification: str
    source: str
    severity: Severity
    terminates: dt.date | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    url: str | None = None  # set by the app: the rule's page at /docs/rules/<id>
    # what a clinician would really say when overriding this rule (override-reason CodeSystem codes)
    override_reasons: tuple[str, ...] = ()

    def in_force(self, day: dt.date) -> bool:
        return self.effective <= day and (self.terminates is None or day < self.terminates)

    @property
    def ref(self) -> RuleRef:
        return RuleRef(self.id, self.version, self.source, self.verification, self.url)


@dataclass(frozen=True)
class RuleBook:
    version: str
    rules: tuple[Rule, ...]

    @classmethod
    def load(cls, path: Path = RULES_PATH, base_url: str | None = None) -> RuleBook:
        with path.open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
        rules = []
        for spec in raw["rules"]:
            spec = dict(spec)
            if spec["verification"] not in VERIFICATION:
                raise ValueError(f"rules.yaml: {spec['id']}: unknown verification {spec['verification']!r}")
            spec["severity"] = Severity(spec["severity"])
            spec["version"] = str(spec["version"])
            spec.setdefault("params", {})
            spec["params"] = spec["params"] or {}
            spec["override_reasons"] = tuple(str(r) for r in spec.get("override_reasons") or ())
            if base_url:
                spec["url"] = f"{base_url.rstrip('/')}/docs/rules/{spec['id']}"
            rules.append(Rule(**spec))
        ids = [r.id for r in rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rules.yaml: duplicate rule ids")
        return cls(str(raw["version"]), tuple(rules))

    def get(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)

    def in_force(self, day: dt.date) -> dict[str, Rule]:
        return {r.id: r for r in self.rules if r.in_force(day)}


@lru_cache(maxsize=4)
def default_rulebook(base_url: str | None = None) -> RuleBook:
    return RuleBook.load(base_url=base_url)
