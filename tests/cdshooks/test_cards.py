"""Cards from findings: wording from cards/, one card per problem, order, provenance, links, and
start-up failure for a missing or broken template. Findings come from the real engine run on
hand-written visits (tests/coding/visits.py) and from real FHIR sent through the app."""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from service.app import create_app
from service.cdshooks.cards import MAX_SUMMARY, CardBuilder, merge
from service.cdshooks.cardtemplates import PARAM_KEYS, CardTemplateError, cards_dir
from service.cdshooks.services import ORDER_SIGN_SERVICE_ID, build_services
from service.cdshooks.validation import check_request
from service.coding.cms import load_tables
from service.coding.codetable import default_code_table
from service.coding.engine import PayerProfiles, RuleSet, evaluate
from service.coding.findings import Evidence, Finding, FindingKind, Severity
from service.coding.rulebook import RuleBook
from service.coding.terminology import in_group
from service.config import ConfigError, load_settings
from service.fhir.resources import VisitResources
from tests.coding.visits import DOSE_UP, ISOMED, MD, RN, SUPERVISOR, chosen, drug, visit
from tests.conftest import response_problems

ROOT = Path(__file__).resolve().parents[2]
CARDS = ROOT / "cards"
BOOK = RuleBook.load(base_url="https://cds.example.org")
SETTINGS = load_settings(environ={}, public_base_url="https://cds.example.org")


CODES = default_code_table()


@pytest.fixture(scope="module")
def builder() -> CardBuilder:
    return CardBuilder.load(SETTINGS, BOOK, CODES)


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return RuleSet(BOOK, default_code_table(), load_tables(SETTINGS), PayerProfiles.load("conservative"))


def order_sign_request() -> Any:
    services = build_services(SETTINGS)
    body = {"hook": "order-sign", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/u", "patientId": "pt", "encounterId": "enc",
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": []}},
            "prefetch": {"device": None, "procedures": None}}
    return check_request(services[ORDER_SIGN_SERVICE_ID], body)


def empty_resources() -> VisitResources:
    return VisitResources(context={"patientId": "pt", "encounterId": "enc"}, hook="order-sign")


def built(builder: CardBuilder, findings: list[Finding]) -> list[dict[str, Any]]:
    """The cards as the client receives them."""
    return [c.as_dict() for c in builder.build(findings, order_sign_request(), empty_resources())]


def one_card(builder: CardBuilder, f: Finding) -> dict[str, Any]:
    return builder.card(f, order_sign_request(), empty_resources()).as_dict()


# -- templates: one per rule, each naming a rule --------------------------------------------------

def test_every_rule_has_a_template_file_and_every_file_names_a_rule() -> None:
    named = {}
    for path in (CARDS / "rules").glob("*.yaml"):
        rule = yaml.safe_load(path.read_text())["rule"]
        assert rule not in named, f"{path} and {named.get(rule)} both serve {rule}"
        named[rule] = path
    assert set(named) == {r.id for r in BOOK.rules}
    assert len(named) == 21


def test_the_default_cards_dir_is_the_repositorys() -> None:
    assert cards_dir(load_settings(environ={})).resolve() == CARDS.resolve()
    assert cards_dir(load_settings(environ={"PUMPCDS_CARDS_DIR": "/elsewhere"})) == Path("/elsewhere")


# -- the longest plausible values ----------------------------------------------------------------

LONG_PARAMS = {
    "date_of_service": "2026-11-20",
    "pump": "intrathecal programmable pump (SynchroMed III 40 mL with catheter access port, Medtronic)",
    "activities": "electronic analysis, reprogramming of daily dose, bolus and mode, and refill",
    "performer": "clinical staff (RN), physician/QHP (nurse practitioner), physician (MD)",
    "changed_parameters": "daily dose 0.5 mg/d -> 0.55 mg/d; mode simple continuous -> flex; "
                          "bolus 0.05 mg -> 0.1 mg; reservoir volume 2 mL -> 40 mL",
    "payer": "Medicare Part B Jurisdiction 15 (CGS Administrators) secondary commercial plan",
    "payer_profile": "any-parameter",
    "reason": "intrathecal programmable pump (SynchroMed III 40 mL); electronic analysis, reprogramming and "
              "refill; by clinical staff (RN); only reservoir volume, alarm limits changed",
    "pair": "62367 + 62368 + 62369 + 62370 + 95990 + 95991",
    "column1": "62370", "column2": "99215", "modifier_indicator": "1", "file_release": "ccipra-v321r0-f1",
    "bypass_modifiers": "25, 59, XE, XP, XS, XU", "billed_units": "99999", "mue": "9999", "mai": "3",
    "indicator": "bilateral surgery", "indicator_value": "9",
    "drug": "ziconotide intrathecal infusion 100 mcg/mL single-dose vial (Prialt) compounded with morphine",
    "amount": "2999.5 micrograms", "waste": "1499.5 micrograms",
    "candidates": "62369 or 62370", "chosen": "95990",
    "deciding": "whether a physician or other qualified professional did the work",
    "unknown_because": "who performed the service and their credentials could not be read "
                       "(the record system did not answer in time)",
    "selection_rule": "SEL-MATRIX",
}
assert set(LONG_PARAMS) | {"performer_reference", "encounter_reference", "patient_reference", "action"} == set(PARAM_KEYS)


def longest(rule_id: str, kind: FindingKind) -> Finding:
    rule = BOOK.get(rule_id)
    evidence = tuple(Evidence(f"MedicationAdministration/{'x' * 60}-{i}", f"drug administered into the pump {i} " * 3,
                              "2026-11-20") for i in range(40))
    return Finding(
        kind=kind, severity=rule.severity, rule=rule.ref, code="62370",
        replaces=("62367", "62368", "62369", "62370", "95990", "95991"),
        modifiers=("XE", "XP", "XS", "XU", "JW"), units=9999,
        evidence=evidence, missing=tuple(c.code for c in in_group("documentation")), params=LONG_PARAMS,
    )


def test_the_longest_rule_title_is_really_long() -> None:
    assert max(len(r.title) for r in BOOK.rules) > 90


@pytest.mark.parametrize("rule_id", [r.id for r in BOOK.rules])
def test_every_template_fits_the_longest_values(builder: CardBuilder, rule_id: str) -> None:
    for kind in FindingKind:
        f = longest(rule_id, kind)
        ctx = builder.context(f)
        raw = " ".join(builder.templates.render(rule_id, "summary", kind.value, ctx).split())
        assert 0 < len(raw) <= MAX_SUMMARY, (rule_id, kind.value, len(raw), raw)  # fits without clipping
        detail = builder.templates.render(rule_id, "detail", kind.value, ctx)
        rule = BOOK.get(rule_id)
        assert f"Rule: [{rule.title}](https://cds.example.org/docs/rules/{rule_id}) (version {rule.version}," in detail
        assert rule.source.split(" ")[0] in detail
        # every row is reachable on the card itself, and no row names a resource id
        assert "| What was seen | Where | Date |" in detail and detail.count("| drug given |") == 40
        assert "more fact" not in detail and "MedicationAdministration/" not in detail
        assert one_card(builder, f)["summary"] == raw


def test_summaries_name_the_code_and_lead_with_the_action(builder: CardBuilder) -> None:
    f = Finding(FindingKind.REPLACE_CODE, Severity.WARNING, BOOK.get("SEL-MATRIX").ref, code="62369",
                replaces=("95990",))
    assert one_card(builder, f)["summary"] == "Code 62369 for this visit, not 95990"


# -- cards from the real engine --------------------------------------------------------------------

SCENARIOS = {
    "62370 by a nurse": visit(changes=(DOSE_UP,), refilled=True, performers=(RN, SUPERVISOR), codes=(chosen("62370"),)),
    "analysis + refill": visit(changes=(DOSE_UP,), refilled=True, performers=(RN, SUPERVISOR),
                               codes=(chosen("62369"), chosen("95990"))),
    "family duplicate": visit(changes=(DOSE_UP,), refilled=False, codes=(chosen("62367"), chosen("62368"))),
    "implant session": visit(changes=(DOSE_UP,), codes=(chosen("62362"), chosen("62368"))),
    "non-programmable": visit(pump=ISOMED, refilled=True, performers=(RN, SUPERVISOR), codes=(chosen("62369"),)),
    "E/M no problem": visit(codes=(chosen("62367"), chosen("99213", reasons=("Z45.1",)))),
    "E/M separate problem": visit(codes=(chosen("62367"), chosen("99214", reasons=("M54.50",)))),
    "MUE": visit(changes=(DOSE_UP,), refilled=True, codes=(chosen("62370", units=2),), qhp_reasons=("x",)),
    "modifier 26": visit(changes=(DOSE_UP,), refilled=True, codes=(chosen("62370", modifiers=("26",)),), qhp_reasons=("x",)),
    "drug line": visit(refilled=True, codes=(chosen("95991"),), drug=drug(amount=2.3, wasted=0.0), qhp_reasons=("x",)),
    "JW": visit(refilled=True, codes=(chosen("95991"), chosen("J0475", system="hcpcs", units=2)),
                drug=drug(amount=1.5, wasted=1.5), qhp_reasons=("x",)),
    "G35": visit(codes=(chosen("62367"),), diagnoses=(("G35", "Condition/ms"),)),
    "missing docs": visit(changes=(DOSE_UP,), refilled=False, codes=(chosen("62368"),),
                          documented=visit().documented - {"doc-change-reason", "doc-alarm-status"}),
    "incident-to": visit(changes=(DOSE_UP,), refilled=True, performers=(RN,), codes=(chosen("62369"),),
                         payer_names=("Medicare Part B",)),
    "no code chosen": visit(changes=(DOSE_UP,), refilled=True, performers=(MD,)),
    "input problems": visit(codes=(chosen("62367"),), input_problems=(
        Evidence("Procedure/bad-1", "skipped: status 'not-a-status' is not a Procedure status"),),
        unreadable=(("procedure records", "1 entry could not be read (not in the expected format)"),)),
    "undecided performer": visit(refilled=True, performers=(), codes=(chosen("62367"),),
                                 undecided={"qhp_performed": "who performed the service could not be read"}),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_cards_from_engine_findings_pass_the_cds_hooks_checks(builder: CardBuilder, ruleset: RuleSet, name: str) -> None:
    findings = evaluate(SCENARIOS[name], ruleset)
    assert findings, name
    cards = built(builder, findings)
    assert response_problems({"cards": cards}) == []
    for card in cards:
        assert card["source"]["url"].startswith("https://cds.example.org/docs/rules/")
        assert card["source"]["topic"]["code"] == card["extension"]["pumpcds"]["ruleId"]
        rule = BOOK.get(card["extension"]["pumpcds"]["ruleId"])
        assert [r["code"] for r in card["overrideReasons"]] == list(rule.override_reasons)
        assert all(r["display"] for r in card["overrideReasons"])
        assert card["detail"].count(f"(version {rule.version},") == 1
    rank = {"critical": 0, "warning": 1, "info": 2}
    assert [rank[c["indicator"]] for c in cards] == sorted(rank[c["indicator"]] for c in cards)


def test_every_rule_and_kind_seen_in_the_scenarios_has_its_own_summary(builder: CardBuilder, ruleset: RuleSet) -> None:
    """No card from the scenarios falls back to a generic 'Check ...' wording."""
    seen = set()
    for v in SCENARIOS.values():
        for card in built(builder, evaluate(v, ruleset)):
            seen.add(card["extension"]["pumpcds"]["ruleId"])
            assert not card["summary"].startswith("Check ") or card["extension"]["pumpcds"]["ruleId"] == "DQ-INPUT", card["summary"]
    assert len(seen) >= 15, seen


def test_indicator_policy_critical_only_for_claims_that_are_wrong_or_rejected() -> None:
    claim_breaking = {"SEL-NONPROG", "SEL-INTRAVENTRICULAR", "SEL-SYSTEMIC", "BUN-ANALYSIS-REFILL", "BUN-FAMILY-DUP",
                      "BUN-IMPLANT-62362", "PERF-QHP-STAFF", "NCCI-PTP", "NCCI-MUE", "MOD-INDICATOR", "DX-G35"}
    critical = {r.id for r in BOOK.rules if r.severity == Severity.CRITICAL}
    assert critical <= claim_breaking, critical - claim_breaking
    documentation = {r.id for r in BOOK.rules if r.check in ("documentation", "qhp-reason", "data-quality")}
    assert all(BOOK.get(r).severity == Severity.INFO for r in documentation)


# -- one card per problem ----------------------------------------------------------------------------

def test_two_findings_of_the_same_rule_and_code_make_one_card(builder: CardBuilder) -> None:
    ref = BOOK.get("EM-SAME-DAY").ref
    a = Finding(FindingKind.DROP_CODE, Severity.WARNING, ref, replaces=("99213",), affected=("ServiceRequest/a",),
                evidence=(Evidence("ServiceRequest/a", "code 99213", "2026-11-20"),))
    b = Finding(FindingKind.DROP_CODE, Severity.WARNING, ref, replaces=("99214",), affected=("ServiceRequest/b",),
                evidence=(Evidence("ServiceRequest/b", "code 99214", "2026-11-20"),))
    doc = Finding(FindingKind.MISSING_DOCUMENTATION, Severity.INFO, BOOK.get("DOC-CHECKLIST").ref, code="62367",
                  missing=("doc-route",))
    cards = built(builder, [doc, a, b])
    assert [c["extension"]["pumpcds"]["ruleId"] for c in cards] == ["EM-SAME-DAY", "DOC-CHECKLIST"]
    assert cards[0]["summary"] == "Remove 99213 and 99214: no problem separate from the pump visit"
    assert "code 99213" in cards[0]["detail"] and "code 99214" in cards[0]["detail"]
    assert "ServiceRequest/" not in cards[0]["detail"]  # ids stay in the extension, for coders
    assert [e["reference"] for e in cards[0]["extension"]["pumpcds"]["evidence"]] == ["ServiceRequest/a", "ServiceRequest/b"]
    (merged,) = merge([a, b])
    assert merged.affected == ("ServiceRequest/a", "ServiceRequest/b")


def test_different_kinds_of_one_rule_and_code_stay_separate() -> None:
    ref = BOOK.get("NCCI-PTP").ref
    drop = Finding(FindingKind.DROP_CODE, Severity.CRITICAL, ref, code="62370", replaces=("99215",))
    warn = Finding(FindingKind.WARNING, Severity.WARNING, ref, code="62370")
    assert [f.kind for f in merge([warn, drop])] == [FindingKind.DROP_CODE, FindingKind.WARNING]


# -- Markdown safety and links --------------------------------------------------------------------------

def test_record_values_cannot_inject_markdown(builder: CardBuilder) -> None:
    f = Finding(FindingKind.DATA_QUALITY, Severity.INFO, BOOK.get("DQ-INPUT").ref, evidence=(
        Evidence("Device/p|x", "model [click](https://evil.example) <img src=x> | *bold*", "2026-11-20"),))
    detail = one_card(builder, f)["detail"]
    assert "\\[click\\](https://evil.example) \\<img src=x\\> \\| \\*bold\\*" in detail
    assert "| pump record |" in detail and "Device/p" not in detail
    assert "[click](" not in detail


def test_links_point_at_pages_the_service_serves(tmp_path: Path) -> None:
    app = create_app(load_settings(environ={}, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                                   documentation_app_url="https://docs-app.example.org/launch"))
    b = app.extensions["pumpcds"].cards
    f = Finding(FindingKind.MISSING_DOCUMENTATION, Severity.INFO, app.extensions["pumpcds"].engine.rules.book.get(
        "DOC-CHECKLIST").ref, code="62370", missing=("doc-route",))
    card = one_card(b, f)
    absolute, smart = card["links"]
    assert (absolute["type"], smart["type"]) == ("absolute", "smart")
    assert "appContext" not in absolute and '"doc-route"' in smart["appContext"]
    client = app.test_client()
    for url in (absolute["url"], card["source"]["url"]):
        assert url.startswith("http://localhost:8080/docs/")
        assert client.get(urlparse(url).path).status_code == 200, url
    drug_card = one_card(b, Finding(FindingKind.RECOMMENDED_CODE, Severity.INFO, f.rule, code="J0475", units=2))
    assert [link["url"] for link in drug_card["links"]] == ["http://localhost:8080/docs/codes/J0475"]
    assert client.get("/docs/codes/J0475").status_code == 200
    other = one_card(b, Finding(FindingKind.RECOMMENDED_CODE, Severity.INFO, f.rule, code="J9999", units=2))
    assert "links" not in other  # no page for codes outside the code table


# -- start-up failures name the file ----------------------------------------------------------------

def broken_copy(tmp_path: Path, change) -> Path:
    root = tmp_path / "cards"
    shutil.copytree(CARDS, root)
    change(root)
    return root


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("change, expected", [
    (lambda r: (r / "rules" / "NCCI-MUE.yaml").unlink(), "no card templates for rule(s) NCCI-MUE"),
    (lambda r: _edit(r / "rules" / "SEL-MATRIX.yaml", "{{ code }} for this visit", "{{ code for this visit"),
     "SEL-MATRIX.yaml: summary.replace-code: line 1"),
    (lambda r: _edit(r / "rules" / "DX-G35.yaml", "{{ replaces|codes }} with", "{{ replaced|codes }} with"),
     "DX-G35.yaml: summary (recommended-code): 'replaced' is undefined"),
    (lambda r: _edit(r / "rules" / "NCCI-MUE.yaml", "params.billed_units or 'more' }} units", "params.billed_unit }} units"),
     "NCCI-MUE.yaml: detail"),
    (lambda r: _edit(r / "rules" / "DQ-INPUT.yaml", "rule: DQ-INPUT", "rule: DQ-INPUTS"), "names rule DQ-INPUTS"),
    (lambda r: (r / "partials" / "evidence.md.j2").unlink(), "included template not found: evidence.md.j2"),
    (lambda r: _edit(r / "rules" / "EM-SAME-DAY.yaml", "  drop-code:", "  drop_code:"), "unknown finding kind(s) drop_code"),
    (lambda r: _edit(r / "cards.yaml", "document: \"What to document for {{ code }}\"", "document: \"{{ code.x.y }}\""),
     "cards.yaml: links.document"),
    (lambda r: (r / "pages" / "rule.html.j2").unlink(), "rule.html.j2: page template missing"),
    # fails only when units is empty (a finding without units): caught at start by the sparse render
    (lambda r: _edit(r / "cards.yaml", "{% if units and units > 1 %}", "{% if units > 1 %}"),
     "cards.yaml: suggestions.order.create.label: TypeError"),
])
def test_a_missing_or_broken_template_stops_the_start(tmp_path: Path, change, expected: str) -> None:
    root = broken_copy(tmp_path, change)
    with pytest.raises(ConfigError) as err:
        create_app(load_settings(environ={}, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", cards_dir=str(root)))
    assert expected in str(err.value), str(err.value)
    assert isinstance(err.value, CardTemplateError)


def test_a_missing_cards_dir_is_named(tmp_path: Path) -> None:
    with pytest.raises(CardTemplateError, match="cards directory not found: .*nowhere"):
        CardBuilder.load(load_settings(environ={}, cards_dir=str(tmp_path / "nowhere")), BOOK, CODES)


def test_wording_is_edited_without_python(tmp_path: Path) -> None:
    root = broken_copy(tmp_path, lambda r: _edit(r / "rules" / "SEL-MATRIX.yaml",
                                                 'replace-code: "Code {{ code }} for this visit',
                                                 'replace-code: "Bill {{ code }} today'))
    b = CardBuilder.load(load_settings(environ={}, cards_dir=str(root)), BOOK, CODES)
    f = Finding(FindingKind.REPLACE_CODE, Severity.WARNING, BOOK.get("SEL-MATRIX").ref, code="62369", replaces=("95990",))
    assert one_card(b, f)["summary"] == "Bill 62369 today, not 95990"



def test_compiled_templates_kept_for_the_process_never_serve_stale_wording(tmp_path: Path) -> None:
    """Template code is kept across loads (apps start faster), yet a partial edited in place and a
    second cards dir with other wording each show their own text."""
    f = Finding(FindingKind.REPLACE_CODE, Severity.WARNING, BOOK.get("SEL-MATRIX").ref, code="62369", replaces=("95990",))
    root = broken_copy(tmp_path, lambda r: None)

    def detail(cards: Path) -> str:
        b = CardBuilder.load(load_settings(environ={}, cards_dir=str(cards)), BOOK, CODES)
        return one_card(b, f)["detail"]

    assert "Rule: [" in detail(root)
    _edit(root / "partials" / "rule.md.j2", "Rule: [", "Coding rule: [")  # same path, new source
    assert "Coding rule: [" in detail(root)
    other = tmp_path / "other"
    shutil.copytree(CARDS, other)
    _edit(other / "partials" / "rule.md.j2", "Rule: [", "Regel: [")
    _edit(other / "rules" / "SEL-MATRIX.yaml", "**What was done:**", "**Done:**")
    assert "Regel: [" in detail(other) and "**Done:**" in detail(other)
    assert "Coding rule: [" in detail(root) and "**What was done:**" in detail(root)
