"""Rules really as data: every rule is checked against its check's declared params when rules.yaml
loads, the engine and checks hold no rule id or code, and a new rule that reuses a check needs only
data, a card template and tests."""
from __future__ import annotations

import ast
import datetime as dt
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.cdshooks.cards import CardBuilder
from service.cdshooks.cardtemplates import CardTemplateError
from service.cdshooks.services import ORDER_SIGN_SERVICE_ID, build_services
from service.cdshooks.validation import check_request
from service.coding.checks import REGISTRY, Stage
from service.coding.engine import CodingEngine, RuleSet, evaluate
from service.coding.findings import FindingKind
from service.coding.rulebook import RULES_PATH, RuleBook, RuleBookError
from service.config import ConfigError, load_settings
from service.fhir.resources import VisitResources

from .test_rules import by_rule, only
from .visits import chosen, visit

ROOT = Path(__file__).resolve().parents[2]
ENGINE_SOURCES = [ROOT / "service" / "coding" / "engine.py", ROOT / "service" / "coding" / "facts.py",
                  *sorted((ROOT / "service" / "coding" / "checks").glob("*.py")),
                  *sorted((ROOT / "service" / "coding" / "readers").glob("*.py"))]


def shipped() -> dict[str, Any]:
    return yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def edited(tmp_path: Path, rule_id: str, change: Callable[[dict[str, Any]], None]) -> Path:
    data = shipped()
    change(next(r for r in data["rules"] if r["id"] == rule_id))
    return write(tmp_path, data)


# -- load-time validation ------------------------------------------------------------------------------

def test_the_shipped_rules_load_and_name_only_what_codes_yaml_knows(ruleset: RuleSet) -> None:
    ruleset.check()


@pytest.mark.parametrize("rule_id, change, problem", [
    ("DX-G35", lambda r: r.update(check="diagnosis-headers"), "unknown check 'diagnosis-headers'"),
    ("NCCI-PTP", lambda r: r["params"].update(em_codes_bypass=["25"]), "unknown param 'em_codes_bypass'"),
    ("DRUG-JW-JZ", lambda r: r["params"].pop("jz_from"), "missing param 'jz_from'"),
    ("PERF-QHP-REASON", lambda r: r["params"].update(codes="62370"), "param 'codes' must be a non-empty list"),
    ("DRUG-JW-JZ", lambda r: r["params"].update(jz_from="July 2023"), "param 'jz_from' must be a date"),
    ("EM-SAME-DAY", lambda r: r["params"].update(pump_line_diagnoses_are_pump_care="yes"),
     "param 'pump_line_diagnoses_are_pump_care' must be true or false"),
    ("SEL-MATRIX", lambda r: r["params"]["rows"].append({"when": {"refiled": True}, "code": "95990"}),
     "param 'rows' must be a list of"),
    ("DOC-CHECKLIST", lambda r: r["params"]["not_applicable"].append({"element": "doc-route"}),
     "param 'not_applicable' must be"),
    ("NCCI-MUE", lambda r: r["params"].update(fallback={"62370": "one"}), "param 'fallback' must be a mapping"),
    ("SEL-UNDECIDED", lambda r: r.update(params={"rows": []}), "unknown param 'rows'"),
    ("DX-G35", lambda r: r.pop("source"), "missing source"),
    ("DX-G35", lambda r: r.update(severity="urgent"), "unknown severity 'urgent'"),
    ("DX-G35", lambda r: r.update(effective="soon"), "effective must be a date"),
    ("DX-G35", lambda r: r.update(notes="x"), "unknown field(s) notes"),
])
def test_a_rule_its_check_cannot_run_stops_the_start_naming_file_and_rule(
        tmp_path: Path, rule_id: str, change: Callable[[dict[str, Any]], None], problem: str) -> None:
    path = edited(tmp_path, rule_id, change)
    with pytest.raises(ConfigError) as err:
        RuleBook.load(path)
    assert isinstance(err.value, RuleBookError)
    assert str(path) in str(err.value) and f"rule {rule_id}:" in str(err.value)
    assert problem in str(err.value)


def test_a_broken_rule_stops_serve_with_one_line_naming_file_and_rule(tmp_path: Path, monkeypatch, capsys) -> None:
    import os

    from service import cli
    from service.coding import engine
    from tests.store.helpers import closed_port

    for name in list(os.environ):
        if name.startswith("PUMPCDS_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    path = edited(tmp_path, "NCCI-MUE", lambda r: r["params"].update(fallback=["62370"]))
    monkeypatch.setattr(engine, "RULES_PATH", path)
    assert cli.main(["serve", "--port", str(closed_port())]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{path}: rule NCCI-MUE: param 'fallback' must be a mapping" in lines[0], err
    assert "Traceback" not in err


def test_a_duplicate_rule_id_stops_the_start(tmp_path: Path) -> None:
    data = shipped()
    data["rules"].append(dict(data["rules"][-1]))
    with pytest.raises(RuleBookError, match=r"rule DQ-INPUT: duplicate rule id"):
        RuleBook.load(write(tmp_path, data))


@pytest.mark.parametrize("rule_id, change, problem", [
    ("PERF-QHP-REASON", lambda r: r["params"].update(codes=["62370", "62371"]), "code(s) 62371 not in codes.yaml"),
    ("SEL-MATRIX", lambda r: r["params"]["rows"].append({"when": {"refilled": True}, "code": "95992"}),
     "code(s) 95992 not in codes.yaml"),
    ("DRUG-JW-JZ", lambda r: r["params"].update(waste_element="doc-wasted"), "documentation element(s) doc-wasted"),
])
def test_a_code_or_element_unknown_to_codes_yaml_stops_the_engine(
        tmp_path: Path, rule_id: str, change: Callable[[dict[str, Any]], None], problem: str) -> None:
    path = edited(tmp_path, rule_id, change)
    with pytest.raises(RuleBookError) as err:
        CodingEngine.load(load_settings(environ={}), rules_path=path)
    assert f"{path}: rule {rule_id}: {problem}" in str(err.value)


def test_a_rule_codes_yaml_names_as_asker_must_exist(tmp_path: Path) -> None:
    data = shipped()
    data["rules"] = [r for r in data["rules"] if r["id"] != "PERF-QHP-REASON"]
    with pytest.raises(RuleBookError, match="asked_by names rule PERF-QHP-REASON"):
        CodingEngine.load(load_settings(environ={}), rules_path=write(tmp_path, data))


# -- every rule runs, in an order that comes from data -------------------------------------------------

def test_every_rule_is_in_the_plan_by_stage_and_file_order(ruleset: RuleSet) -> None:
    book, plan = ruleset.book, ruleset.plan
    assert sorted(r.id for r, _ in plan) == sorted(r.id for r in book.rules)
    stages = [c.stage for _, c in plan]
    assert stages == sorted(stages)
    order = {r.id: i for i, r in enumerate(book.rules)}
    for stage in Stage:
        ids = [r.id for r, c in plan if c.stage is stage]
        assert ids == sorted(ids, key=order.__getitem__)


def test_every_registered_check_is_used_and_every_param_it_declares_is_documented() -> None:
    used = {r.check for r in RuleBook.load().rules}
    assert set(REGISTRY) == used
    for check in REGISTRY.values():
        assert (check.evaluate is None) != (check.decide is None), check.name
        for name, param in check.params.items():
            assert param.doc, f"{check.name}.{name}"


# -- no rule id or code in engine code -----------------------------------------------------------------

# a rule id: any id of the book, or anything shaped like one (a family prefix of the book, a dash)
PREFIXES = sorted({r.id.split("-")[0] for r in RuleBook.load().rules})
RULE_ID = re.compile(rf"\b(?:{'|'.join(PREFIXES)})-[A-Z0-9]+(?:-[A-Z0-9]+)*\b")
CODE = re.compile(r"(?<![\w.])(?:\d{5}|[A-Z]\d{4}|\d{4}[A-Z])(?![\w.])")


def literals(source: str) -> list[str]:
    """Rule ids and CPT/HCPCS codes written in the source's strings or numbers (docstrings included)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += RULE_ID.findall(node.value) + CODE.findall(node.value)
        elif isinstance(node, ast.Constant) and isinstance(node.value, int) and 10000 <= node.value <= 99999:
            found.append(str(node.value))
    return found


def test_the_scan_finds_rule_ids_and_codes() -> None:
    assert sorted(literals('X = ("62367", "95990")\nif rule.id == "SEL-NONPROG": pass')) == ["62367", "95990", "SEL-NONPROG"]
    assert sorted(literals('f"part of 62362"\nJ = "J0475"\nN = 62370\nT = "0001T"')) == ["0001T", "62362", "62370", "J0475"]
    assert literals('"""See DX-G35."""\nx = "doc-qhp-skill-reason"\ny = "code:{c}"\nz = "M54.5 ICD-10-CM"') == ["DX-G35"]
    assert literals('x = "SEL-SOMETHING-NEW"') == ["SEL-SOMETHING-NEW"]


@pytest.mark.parametrize("path", ENGINE_SOURCES, ids=lambda p: p.name)
def test_engine_and_check_modules_hold_no_rule_id_or_code(path: Path) -> None:
    assert literals(path.read_text(encoding="utf-8")) == []


# -- a new rule that reuses a check: data, a card template, tests -------------------------------------

NEW_RULE = {
    "id": "DX-M545",
    "version": "1",
    "title": "M54.5 is a header from 2021-10-01; use a specific low back pain code",
    "check": "diagnosis-header",
    "effective": dt.date(2021, 10, 1),
    "verification": "V2",
    "source": "ICD-10-CM FY2022 update (M54.5 becomes a category with subcodes from 1 October 2021)",
    "override_reasons": ["already-corrected", "data-incorrect"],
    "severity": "critical",
    "params": {"headers": {"M54.5": "M54.50, M54.51 or M54.59"}},
}
NEW_CARD = """rule: DX-M545
summary: "Replace {{ replaces|codes }} with a specific low back pain code"
detail: |
  From 1 October 2021, {{ replaces|codes }} is a category heading, not a billable diagnosis.
  Use a specific code{% if params.reason %}: {{ params.reason }}{% endif %}.
  {% include "standard.md.j2" %}
"""


def order_sign_request() -> Any:
    settings = load_settings(environ={})
    body = {"hook": "order-sign", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/u", "patientId": "pt", "encounterId": "enc",
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": []}},
            "prefetch": {"device": None, "procedures": None}}
    return check_request(build_services(settings)[ORDER_SIGN_SERVICE_ID], body)


def test_a_new_rule_reusing_a_check_needs_only_data_and_a_card_template(tmp_path: Path) -> None:
    data = shipped()
    data["rules"].append(NEW_RULE)
    settings = load_settings(environ={})
    engine = CodingEngine.load(settings, rules_path=write(tmp_path, data))
    v = visit(codes=(chosen("62367"),), diagnoses=(("M54.5", "Condition/lbp"),))
    f = only(evaluate(v, engine.rules), "DX-M545")
    assert (f.kind, f.replaces, f.params["reason"]) == (FindingKind.REPLACE_CODE, ("M54.5",), "M54.50, M54.51 or M54.59")
    before = replace(v, date_of_service=dt.date(2021, 9, 30))
    assert by_rule(evaluate(before, engine.rules), "DX-M545") == []  # in force from its date

    cards = tmp_path / "cards"
    shutil.copytree(ROOT / "cards", cards)
    with pytest.raises(CardTemplateError, match="DX-M545"):  # the wording is the one other thing it needs
        CardBuilder.load(settings, engine.rules.book, engine.rules.codes, directory=cards)
    (cards / "rules" / "DX-M545.yaml").write_text(NEW_CARD, encoding="utf-8")
    builder = CardBuilder.load(settings, engine.rules.book, engine.rules.codes, directory=cards)
    resources = VisitResources(context={"patientId": "pt", "encounterId": "enc"}, hook="order-sign")
    [card] = builder.build([f], order_sign_request(), resources)
    assert card.summary == "Replace M54.5 with a specific low back pain code"
    assert card.indicator == "critical" and card.as_dict()["source"]["topic"]["code"] == "DX-M545"


def test_a_payer_naming_an_unknown_profile_stops_the_start(tmp_path: Path) -> None:
    from service.coding.payers import PROFILES_PATH, PayerProfiles

    data = yaml.safe_load(PROFILES_PATH.read_text(encoding="utf-8"))
    data["payers"].append({"display_contains": "acme", "profile": "any-paramter"})
    path = tmp_path / "payer-profiles.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}: payer 'acme': unknown profile 'any-paramter'"):
        PayerProfiles.load("conservative", path)
