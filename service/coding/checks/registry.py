"""The registry of `check` evaluators: each declares its stage and the params it takes.

    @check("ncci-mue", stage=Stage.EDITS, params={"fallback": Param(CODE_LIMITS, required=False)})
    def ncci_mue(run: Run, rule: Rule) -> None: ...

`RuleBook.load` checks every rule of rules.yaml against its evaluator's declaration (an unknown
check, an unknown or missing param, a param of the wrong type is a start-up error), so an
evaluator may read its declared params without defaults. The stage, not a hand-kept list, sets
when a check runs; a rule whose check is registered always runs.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..rulebook import Rule
    from .base import Decision, Run

# the visit facts a condition (`applies_when`, `when`) may test; checks/base.py `facts_view` gives them
FACTS = frozenset({"pump_kind", "target", "systemic", "reprogrammed", "reprogramming_recorded", "refilled",
                   "qhp_performed", "analysable", "signature"})


class Stage(IntEnum):
    """When a check runs. Stages run in this order; within a stage, rules run in rules.yaml order
    and each sees the findings of the rules before it (a removed code is not checked again)."""

    DECISION = 0  # the pump-family decision, made once (checks/selection.py)
    LINES = 1  # the visit's other lines and facts: E/M, drug, diagnoses, performer, input
    EDITS = 2  # payer edits (NCCI, fee-schedule indicators) on what is still billed
    CHECKLIST = 3  # documentation: leaves out what earlier findings already ask for


class Role(Enum):
    """The part a DECISION-stage check plays in the pump-family decision (checks/selection.py)."""

    PREEMPT = "preempt"  # decides the visit before any selection (programming at the implant)
    SELECT = "select"  # the first selection rule whose applies_when matches chooses the code
    UNDECIDED = "undecided"  # reports a code-deciding fact that could not be read
    EXPLAIN = "explain"  # the first that explains a wrong chosen code names the finding


# -- param types -----------------------------------------------------------------------------

def _none(_: Any) -> Iterable[str]:
    return ()


@dataclass(frozen=True)
class Kind:
    """A param type: its name for error messages, a test, and the codes.yaml codes and
    documentation elements a value names (checked against codes.yaml when the engine loads)."""

    name: str
    valid: Callable[[Any], bool]
    codes: Callable[[Any], Iterable[str]] = _none
    elements: Callable[[Any], Iterable[str]] = _none


def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _texts(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(_text(x) for x in v)


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, bool))


def _conditions(v: Any) -> bool:
    return isinstance(v, Mapping) and all(
        k in FACTS and (_scalar(x) or (isinstance(x, list) and all(_scalar(y) for y in x))) for k, x in v.items())


def _row(v: Any) -> bool:
    return (isinstance(v, Mapping) and set(v) <= {"when", "code"} and "code" in v
            and (v["code"] is None or _text(v["code"])) and _conditions(v.get("when", {})))


def _not_applicable(v: Any) -> bool:
    return isinstance(v, Mapping) and set(v) == {"element", "when"} and _text(v["element"]) and _conditions(v["when"])


TEXT = Kind("a text", _text)
TEXTS = Kind("a non-empty list of texts", _texts)
FLAG = Kind("true or false", lambda v: isinstance(v, bool))
DATE = Kind("a date (YYYY-MM-DD)", lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime))
CODES = Kind("a non-empty list of quoted codes of codes.yaml", _texts, codes=lambda v: v)
CODE_LIMITS = Kind("a mapping of quoted codes of codes.yaml to whole numbers",
                   lambda v: isinstance(v, Mapping) and all(
                       _text(k) and isinstance(n, int) and not isinstance(n, bool) and n >= 0 for k, n in v.items()),
                   codes=lambda v: v.keys())
TEXT_MAP = Kind("a mapping of texts to texts",
                lambda v: isinstance(v, Mapping) and bool(v) and all(_text(k) and _text(x) for k, x in v.items()))
ELEMENT = Kind("a documentation element of codes.yaml", _text, elements=lambda v: [v])
ELEMENT_FACTS = Kind("a mapping of documentation elements to evidence keys",
                     lambda v: isinstance(v, Mapping) and all(_text(k) and _text(x) for k, x in v.items()),
                     elements=lambda v: v.keys())
CONDITIONS = Kind(f"a mapping of facts ({', '.join(sorted(FACTS))}) to a value or a list of values", _conditions)
ROWS = Kind("a list of {when: conditions, code: quoted code or null}",
            lambda v: isinstance(v, list) and bool(v) and all(_row(r) for r in v),
            codes=lambda v: [r["code"] for r in v if r["code"] is not None])
NOT_APPLICABLE = Kind("a list of {element: documentation element, when: conditions}",
                      lambda v: isinstance(v, list) and all(_not_applicable(r) for r in v),
                      elements=lambda v: [r["element"] for r in v])


@dataclass(frozen=True)
class Param:
    kind: Kind
    required: bool = True
    doc: str = ""


# -- checks ------------------------------------------------------------------------------------

Evaluator = Callable[["Run", "Rule"], None]
DecisionPart = Callable[["Run", "Rule", "Decision"], bool]


@dataclass(frozen=True)
class Check:
    name: str
    stage: Stage
    params: Mapping[str, Param]
    evaluate: Evaluator | None = None  # stages after DECISION
    decide: DecisionPart | None = None  # DECISION stage: its part, by role
    role: Role | None = None
    # the CMS tables the check reads ("ptp", "mue", "mpfs"): a rule resting on a bundled synthetic
    # table is labelled test data on its cards and its documentation page
    cms_tables: tuple[str, ...] = ()

    def problems(self, params: Mapping[str, Any]) -> list[str]:
        """What is wrong with a rule's params for this check, in words (empty: nothing)."""
        out = [f"unknown param {name!r} (check {self.name} takes: {', '.join(self.params) or 'none'})"
               for name in params if name not in self.params]
        for name, spec in self.params.items():
            if name not in params:
                if spec.required:
                    out.append(f"missing param {name!r} ({spec.kind.name})")
            elif not spec.kind.valid(params[name]):
                out.append(f"param {name!r} must be {spec.kind.name}, not {params[name]!r}")
        return out

    def named(self, params: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """(codes, documentation elements) the params name, to check against codes.yaml."""
        codes: list[str] = []
        elements: list[str] = []
        for name, spec in self.params.items():
            if name in params:
                codes.extend(str(c) for c in spec.kind.codes(params[name]))
                elements.extend(str(e) for e in spec.kind.elements(params[name]))
        return codes, elements


REGISTRY: dict[str, Check] = {}


def _register(entry: Check) -> None:
    if entry.name in REGISTRY:
        raise RuntimeError(f"check {entry.name!r} registered twice")
    REGISTRY[entry.name] = entry


def check(name: str, *, stage: Stage, params: Mapping[str, Param] | None = None,
          cms_tables: tuple[str, ...] = ()) -> Callable[[Evaluator], Evaluator]:
    """Register an evaluator `fn(run, rule)` for the rules whose `check` is `name`."""
    if stage is Stage.DECISION:
        raise ValueError(f"check {name!r}: DECISION-stage checks are registered with @decision")

    def register(fn: Evaluator) -> Evaluator:
        _register(Check(name, stage, dict(params or {}), evaluate=fn, cms_tables=cms_tables))
        return fn
    return register


def decision(name: str, *, role: Role, params: Mapping[str, Param] | None = None) -> Callable[[DecisionPart], DecisionPart]:
    """Register a part `fn(run, rule, decision) -> bool` of the pump-family decision."""
    def register(fn: DecisionPart) -> DecisionPart:
        _register(Check(name, Stage.DECISION, dict(params or {}), decide=fn, role=role))
        return fn
    return register
