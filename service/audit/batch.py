"""The batch path: one visit's raw FHIR JSON -> relevance gate -> facts -> rules -> rows.

The same parsing, facts and rules as a hook call (service.fhir.parse, VisitReader, evaluate),
without HTTP, prefetch or cards. A process pool runs `evaluate_batch` on every core; each worker
loads the rules once.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..cdshooks.services import ENCOUNTER_DISCHARGE
from ..coding.engine import CodingEngine
from ..coding.findings import Finding, FindingKind, Severity
from ..coding.relevance import involves_pump
from ..coding.visit import PumpVisit
from ..config import Settings
from ..fhir.parse import parse_many, parse_resource
from ..fhir.resources import ResourceIssue, VisitResources
from ..jsondepth import DEFAULT_MAX_DEPTH
from .payment import FeeSchedule

LOCATION = "export"
SEVERITY_ORDER = {Severity.CRITICAL.value: 0, Severity.WARNING.value: 1, Severity.INFO.value: 2}


@dataclass
class Evaluator:
    engine: CodingEngine
    fees: FeeSchedule | None
    # parsed context resources (the patient's pump and coverage, practitioners, roles) by their
    # text: they recur in every visit of a patient or clinic, and R4 validation is the costly step
    cache: OrderedDict[str, tuple[Any, list[Any]]] = field(default_factory=OrderedDict)
    cache_size: int = 4096
    max_depth: int = DEFAULT_MAX_DEPTH  # the service's max_json_depth: deeper resources are skipped and reported, as in the hooks

    @classmethod
    def load(cls, settings: Settings) -> Evaluator:
        engine = CodingEngine.load(settings)
        return cls(engine, FeeSchedule.for_settings(settings, engine.rules.cms), max_depth=settings.max_json_depth)

    def _context(self, text: str) -> tuple[Any, list[Any]]:
        hit = self.cache.get(text)
        if hit is not None:
            self.cache.move_to_end(text)
            return hit
        try:
            parsed = parse_resource(orjson.loads(text), LOCATION, self.max_depth)
        except orjson.JSONDecodeError:
            parsed = (None, [ResourceIssue(LOCATION, None, None, "not readable as JSON (nested too deep)")])
        self.cache[text] = parsed
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return parsed

    def evaluate(self, group: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """(visit row, finding rows), or None when the visit does not involve a pump."""
        docs, unreadable = [], 0
        for text in group["docs"]:
            try:
                docs.append(orjson.loads(text))
            except orjson.JSONDecodeError:  # valid JSON to DuckDB, but nested past orjson's limit
                unreadable += 1
        if not involves_pump(docs, self.engine.reader.vocab):
            return None
        encounter = group.get("encounter")
        visit_res = VisitResources(
            context={k: v for k, v in (("patientId", group.get("patient")), ("encounterId", encounter)) if v},
            hook=ENCOUNTER_DISCHARGE,
        )
        models, issues = parse_many(docs, LOCATION, encounter, self.max_depth)
        issues.extend([ResourceIssue(LOCATION, None, None, "not readable as JSON (nested too deep)")] * unreadable)
        for text in group.get("context") or ():
            model, found = self._context(text)
            if model is not None:
                models.append(model)
            issues.extend(found)
        visit_res.extend(models)
        visit_res.issues.extend(issues)
        assessment = self.engine.assess(visit_res)
        assert assessment.visit is not None
        return self._rows(group, assessment.visit, assessment.findings)

    def _rows(self, group: Mapping[str, Any], visit: PumpVisit, findings: list[Finding]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        billed = billed_codes(visit)
        common = {
            "visit_id": group["visit"],
            "encounter_id": group.get("encounter"),
            "patient_id": group.get("patient"),
            "date_of_service": visit.date_of_service,
            "performer_class": performer_class(visit),
            "billed_codes": billed,
        }
        rows = []
        for f in findings:
            rows.append({
                **common,
                "recommended_code": f.code,
                "replaces": list(f.replaces),
                "modifiers": list(f.modifiers),
                "units": f.units,
                "kind": f.kind.value,
                "rule_id": f.rule.id,
                "rule_version": f.rule.version,
                "rule_source": f.rule.source,
                "severity": f.severity.value,
                "missing_elements": list(f.missing),
                "est_payment_difference": self.fees.difference(f, visit) if self.fees else None,
            })
        worst = min((SEVERITY_ORDER[f.severity.value] for f in findings), default=None)
        service = self.engine.rules.service_codes
        visit_row = {
            **common,
            "pump_kind": visit.pump.kind,
            "target": visit.pump.target,
            "activities": visit.describe_activities(),
            "billed_service": billed_service(visit, service),
            "expected_service": expected_service(visit, findings, service),
            "findings": len(findings),
            "rule_ids": sorted({f.rule.id for f in findings}),
            "missing_elements": sorted({m for f in findings for m in f.missing}),
            "worst_severity": None if worst is None else next(k for k, v in SEVERITY_ORDER.items() if v == worst),
            "clean": not findings,
            "est_payment_difference": _sum([r["est_payment_difference"] for r in rows]),
        }
        return visit_row, rows


def _sum(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 2) if known else None


def billed_codes(visit: PumpVisit) -> list[str]:
    """CPT/HCPCS lines billed on the visit, as a coder writes them: code-modifiers xunits."""
    out = []
    for c in visit.codes:
        if not c.billed or c.system not in ("cpt", "hcpcs"):
            continue
        text = "-".join((c.code, *c.modifiers))
        out.append(f"{text} x{c.units}" if c.units != 1 else text)
    return out


def billed_service(visit: PumpVisit, service: frozenset[str]) -> str:
    """The pump service codes billed (`service`: the engine's `RuleSet.service_codes`)."""
    codes = sorted({c.code for c in visit.codes if c.billed and c.code in service})
    return "+".join(codes) if codes else "none"


def expected_service(visit: PumpVisit, findings: Iterable[Finding], service: frozenset[str]) -> str:
    """The pump service code the visit should carry: the pump-family finding's code, else what was billed."""
    for f in findings:
        if f.kind in (FindingKind.RECOMMENDED_CODE, FindingKind.REPLACE_CODE, FindingKind.DROP_CODE) and (
            set(f.replaces) & service or (f.kind == FindingKind.RECOMMENDED_CODE and f.code in service)
        ):
            return f.code or "none"
    return billed_service(visit, service)


def performer_class(visit: PumpVisit) -> str:
    roles = {p.role for p in visit.main_performers}
    for role in ("physician", "qhp", "staff"):
        if role in roles:
            return role
    return "unknown"


# -- process-pool plumbing --------------------------------------------------------------------
_WORKER: Evaluator | None = None


def init_worker(settings: Settings) -> None:
    global _WORKER
    _WORKER = Evaluator.load(settings)


def evaluate_batch(groups: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]], float]:
    """(visits looked at, visit rows, finding rows, the worker's peak RSS in MB) for one batch."""
    assert _WORKER is not None, "init_worker was not called"
    return (*run_batch(_WORKER, groups), peak_rss_mb())


def peak_rss_mb() -> float:
    """This process's own high-water RSS (VmHWM: since exec, unlike getrusage, which a spawned
    worker inherits from the parent it was forked from)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def run_batch(evaluator: Evaluator, groups: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    visits: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    for group in groups:
        out = evaluator.evaluate(group)
        if out is not None:
            visits.append(out[0])
            findings.extend(out[1])
    return len(groups), visits, findings

