"""The rule book (service/coding/data/rules.yaml): identity, dates, provenance and data of each rule.

Loading checks every rule against the check it names (service/coding/checks/): an unknown check,
an unknown or missing param, a param of the wrong type stops the service at start with a
`RuleBookError` naming the file and the rule.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .. import yamlfiles
from ..config import ConfigError
from .checks.registry import REGISTRY
from .findings import RuleRef, Severity

RULES_PATH = Path(__file__).parent / "data" / "rules.yaml"
VERIFICATION = {"V": "verified", "V2": "secondary source", "U": "unverified", "I": "inference"}
# instead of the rule's verification, wherever a finding or a rule rests on a bundled synthetic CMS table
TEST_DATA_LABEL = "test data: synthetic CMS table, not a CMS release"
REQUIRED = ("id", "version", "title", "check", "effective", "verification", "source", "severity")
OPTIONAL = ("terminates", "params", "override_reasons")


class RuleBookError(ConfigError):
    """rules.yaml (or a copy) has a rule the engine cannot run."""


@dataclass(frozen=True)
class Rule:
    id: str
    version: str
    title: str
    check: str  # the evaluator, registered in service/coding/checks/
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
    path: Path = RULES_PATH

    @classmethod
    def load(cls, path: Path = RULES_PATH, base_url: str | None = None) -> RuleBook:
        path = Path(path)
        try:
            with path.open(encoding="utf-8") as fh:
                raw = yamlfiles.safe_load(fh)
        except (OSError, yaml.YAMLError) as exc:
            raise RuleBookError(f"{path}: cannot be read: {exc}") from None
        if not isinstance(raw, Mapping) or not isinstance(raw.get("rules"), list) or "version" not in raw:
            raise RuleBookError(f"{path}: expected 'version' and a list of 'rules'")
        rules = [_rule(path, spec, base_url) for spec in raw["rules"]]
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise RuleBookError(f"{path}: rule {rule.id}: duplicate rule id")
            seen.add(rule.id)
        return cls(str(raw["version"]), tuple(rules), path)

    def get(self, rule_id: str) -> Rule:
        return next(r for r in self.rules if r.id == rule_id)

    def in_force(self, day: dt.date) -> dict[str, Rule]:
        return {r.id: r for r in self.rules if r.in_force(day)}


def _rule(path: Path, spec: Any, base_url: str | None) -> Rule:
    """One rule of the file, checked against its check's declared params."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("id"), str):
        raise RuleBookError(f"{path}: every rule needs an 'id' (found {spec!r:.80})")

    def fail(problem: str) -> RuleBookError:
        return RuleBookError(f"{path}: rule {spec['id']}: {problem}")

    missing = [k for k in REQUIRED if k not in spec]
    if missing:
        raise fail(f"missing {', '.join(missing)}")
    unknown = [k for k in spec if k not in REQUIRED and k not in OPTIONAL]
    if unknown:
        raise fail(f"unknown field(s) {', '.join(map(str, unknown))}")
    check = REGISTRY.get(spec["check"])
    if check is None:
        raise fail(f"unknown check {spec['check']!r} (known: {', '.join(sorted(REGISTRY))})")
    if spec["verification"] not in VERIFICATION:
        raise fail(f"unknown verification {spec['verification']!r} (known: {', '.join(VERIFICATION)})")
    try:
        severity = Severity(spec["severity"])
    except ValueError:
        raise fail(f"unknown severity {spec['severity']!r} (known: {', '.join(s.value for s in Severity)})") from None
    for key in ("effective", "terminates"):
        if key in spec and not (isinstance(spec[key], dt.date) or (key == "terminates" and spec[key] is None)):
            raise fail(f"{key} must be a date (YYYY-MM-DD), not {spec[key]!r}")
    params = spec.get("params") or {}
    if not isinstance(params, Mapping):
        raise fail(f"params must be a mapping, not {params!r}")
    problems = check.problems(params)
    if problems:
        raise fail("; ".join(problems))
    return Rule(
        id=spec["id"], version=str(spec["version"]), title=str(spec["title"]), check=check.name,
        effective=spec["effective"], verification=spec["verification"], source=str(spec["source"]),
        severity=severity, terminates=spec.get("terminates"), params=params,
        url=f"{base_url.rstrip('/')}/docs/rules/{spec['id']}" if base_url else None,
        override_reasons=tuple(str(r) for r in spec.get("override_reasons") or ()),
    )
