"""docs/fhir-input.md stays true: every JSON example is valid FHIR R4 and gives the facts its text claims.

Marker scheme: an HTML comment on the line right before a fenced block (invisible when rendered),
parts separated by ";":

    <!-- fact: pump.kind=programmable-pump; documented~doc-route -->   read through VisitReader, check
    <!-- quirk; fact: ... -->        not valid R4 as sent: strict parsing fails, the repairs make it readable
    <!-- invalid; fact: ... -->      still invalid after repairs: skipped (and an input problem)
    <!-- site-mapping; fact: ... --> read with the site mapping of the ```yaml block marked <!-- site-mapping -->
    <!-- fact: ...; whole-visit -->  also posted through the real app to the encounter-close service

Flags: `draft=Type,Type` (resources of those types are the draftOrders, the rest prefetch under the
key whose template carries the type), `encounter=none` (no encounterId; otherwise `pump-visit`).
Assertions: `path=value` (equal as text; numbers compared as numbers) or `path~a,b` (the collection
holds a and b). A path is attribute names, `[index]` and `code(<code>)`; two facts come from the
engine's payer profiles: `payer_profile` and `reprogrammed(<profile>)`. As text: true/false,
none, dates YYYY-MM-DD, collections joined by ",". Blocks without a marker are only parsed.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from service.cdshooks.services import build_services
from service.coding.codetable import default_code_table
from service.coding.engine import PayerProfiles
from service.coding.facts import VisitReader
from service.coding.terminology import codesystem
from service.coding.visit import ParameterChange, PumpVisit
from service.coding.vocabulary import Vocabulary, load_site_mapping
from service.config import load_settings
from service.fhir.parse import bundle_entries, parse_many
from service.fhir.resources import VisitResources

DOC = Path(__file__).resolve().parents[1] / "docs" / "fhir-input.md"
DATA = Path(__file__).resolve().parents[1] / "service" / "coding" / "data"
BLOCK = re.compile(r"(?:<!--(?P<marker>[^\n]*?)-->[ \t]*\n)?```(?P<lang>json|yaml)\n(?P<body>.*?)\n```", re.S)
KINDS = {"quirk", "invalid", "site-mapping", "whole-visit"}
ENCOUNTER = "pump-visit"
PROFILES = PayerProfiles.load("conservative")


@dataclass(frozen=True)
class Example:
    line: int
    lang: str
    body: str
    kinds: frozenset[str]
    flags: dict[str, str]
    claims: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"line{self.line}"


def _parse_marker(marker: str | None) -> tuple[frozenset[str], dict[str, str], tuple[str, ...]]:
    kinds: set[str] = set()
    flags: dict[str, str] = {}
    claims: list[str] = []
    for part in (marker or "").split(";"):
        part = part.strip()
        if part.startswith("fact:"):
            part = part[len("fact:"):].strip()
        if not part:
            continue
        if part in KINDS:
            kinds.add(part)
        elif part.split("=", 1)[0] in {"draft", "encounter"}:
            key, _, value = part.partition("=")
            flags[key] = value
        else:
            claims.append(part)
    return frozenset(kinds), flags, tuple(claims)


@lru_cache(maxsize=1)
def examples() -> tuple[Example, ...]:
    text = DOC.read_text(encoding="utf-8")
    out = []
    for m in BLOCK.finditer(text):
        kinds, flags, claims = _parse_marker(m.group("marker"))
        line = text.count("\n", 0, m.start("body")) + 1
        out.append(Example(line, m.group("lang"), m.group("body"), kinds, flags, claims))
    return tuple(out)


def json_examples() -> list[Example]:
    return [e for e in examples() if e.lang == "json"]


def fact_examples() -> list[Example]:
    return [e for e in json_examples() if e.claims]


def site_mapping_file(tmp_path: Path) -> str:
    blocks = [e for e in examples() if e.lang == "yaml" and "site-mapping" in e.kinds]
    assert len(blocks) == 1, "the doc needs exactly one ```yaml block marked <!-- site-mapping -->"
    path = tmp_path / "site-mapping.yaml"
    path.write_text(blocks[0].body, encoding="utf-8")
    return str(path)


def raw_resources(body: str) -> list[dict[str, Any]]:
    raw = json.loads(body)
    return bundle_entries(raw) if raw.get("resourceType") == "Bundle" else [raw]


@lru_cache(maxsize=1)
def prefetch_key_of_type() -> dict[str, str]:
    """Resource type -> the prefetch key meant to carry it (as the service would receive it)."""
    out: dict[str, str] = {}
    for service in build_services(load_settings(environ={})).values():
        for template in service.prefetch:
            for rtype in template.types:
                out.setdefault(rtype, template.key)
    return out


def read_example(example: Example, site_mapping: str = "") -> PumpVisit:
    """Feed an example through parsing and the real VisitReader, as tests/coding/test_facts.py does."""
    draft_types = {t for t in example.flags.get("draft", "").split(",") if t}
    drafts, resources, issues = [], [], []
    for raw in raw_resources(example.body):
        rtype = "MedicationRequest" if raw["resourceType"] == "MedicationOrder" else raw["resourceType"]
        location = "draftOrders" if rtype in draft_types else f"prefetch:{prefetch_key_of_type().get(rtype, 'other')}"
        models, found = parse_many([raw], location)
        issues.extend(found)
        (drafts if rtype in draft_types else resources).extend(models)
    context: dict[str, Any] = {"patientId": "pat1", "userId": "Practitioner/md1"}
    if example.flags.get("encounter", ENCOUNTER) != "none":
        context["encounterId"] = example.flags.get("encounter", ENCOUNTER)
    hook = "order-sign" if drafts else "encounter-discharge"
    vr = VisitResources(context=context, hook=hook, draft_orders=drafts, resources=resources, issues=issues)
    return VisitReader(Vocabulary.load(site_mapping), default_code_table()).read(vr)


# -- the claim checker ---------------------------------------------------------------------
_TOKEN = re.compile(r"([A-Za-z_]\w*)|\[(\d+)\]|\(([^)]*)\)|\.")


def resolve(visit: PumpVisit, path: str) -> Any:
    if path == "payer_profile":
        return PROFILES.for_visit(visit)[0].name
    m = re.fullmatch(r"reprogrammed\(([\w-]+)\)", path)
    if m:
        return visit.reprogrammed(PROFILES.profiles[m.group(1)].reprogramming_parameters)
    obj: Any = visit
    pos = 0
    while pos < len(path):
        t = _TOKEN.match(path, pos)
        if t is None:
            raise AssertionError(f"bad path {path!r} at {path[pos:]!r}")
        pos = t.end()
        name, index, arg = t.groups()
        if name is not None:
            obj = getattr(obj, name)
        elif index is not None:
            obj = obj[int(index)]
        elif arg is not None:
            obj = obj(arg)
    return obj


def as_text(x: Any) -> str:
    if x is None:
        return "none"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, (dt.date, dt.datetime)):
        return x.isoformat()[:10]
    if isinstance(x, (set, frozenset)):
        return ",".join(sorted(as_text(i) for i in x))
    if isinstance(x, (tuple, list)):
        return ",".join(as_text(i) for i in x)
    if isinstance(x, float):
        return format(x, "g")
    return str(x)


def _same(actual: Any, expected: str) -> bool:
    text = as_text(actual)
    if text == expected:
        return True
    if isinstance(actual, (int, float)) and not isinstance(actual, bool):
        try:
            return math.isclose(float(actual), float(expected), rel_tol=1e-9, abs_tol=1e-9)
        except ValueError:
            return False
    return False


def check(visit: PumpVisit, claim: str) -> str | None:
    """None when the claim holds, else why not."""
    m = re.fullmatch(r"(?P<path>[^=~]+?)\s*(?P<op>[=~])\s*(?P<value>.*)", claim)
    if m is None:
        return f"cannot read claim {claim!r}"
    path, op, expected = m.group("path"), m.group("op"), m.group("value").strip()
    try:
        actual = resolve(visit, path)
    except (AttributeError, IndexError, KeyError, TypeError) as exc:
        return f"{path}: {type(exc).__name__}: {exc}"
    if op == "=":
        return None if _same(actual, expected) else f"{path}: expected {expected!r}, got {as_text(actual)!r}"
    held = {as_text(i) for i in actual}
    missing = [e for e in expected.split(",") if e and e not in held]
    return None if not missing else f"{path}: lacks {missing} (has {sorted(held)})"


# -- tests ---------------------------------------------------------------------------------
def test_the_doc_has_an_example_for_every_part_of_the_contract() -> None:
    """Guards the extraction itself: a broken regex must not make the other tests vacuous."""
    blocks = json_examples()
    assert len(blocks) >= 25 and len(fact_examples()) >= 25
    types = {r["resourceType"] for e in blocks for r in raw_resources(e.body)}
    assert {"Device", "Procedure", "Observation", "MedicationAdministration", "MedicationRequest", "Medication",
            "ServiceRequest", "ChargeItem", "Practitioner", "PractitionerRole", "Encounter", "Coverage",
            "Condition"} <= types
    assert {k for e in blocks for k in e.kinds} == KINDS


@pytest.mark.parametrize("example", json_examples(), ids=lambda e: e.id)
def test_each_json_example_is_valid_fhir_r4(example: Example) -> None:
    raw = json.loads(example.body)
    cls = get_fhir_model_class("MedicationRequest" if raw["resourceType"] == "MedicationOrder" else raw["resourceType"])
    if example.kinds & {"quirk", "invalid"}:
        with pytest.raises((ValidationError, ValueError)):
            cls.model_validate(raw)
        models, issues = parse_many([raw], "prefetch:procedures")
        skipped = [i for i in issues if i.skipped]
        if "invalid" in example.kinds:
            assert models == [] and len(skipped) == 1
        else:  # repaired, and the repair is recorded
            assert len(models) == 1 and skipped == [] and issues and issues[0].problem
        return
    model = cls.model_validate(raw)
    assert model.get_resource_type() == raw["resourceType"]
    assert parse_many([raw], "prefetch:procedures")[1] == []  # nothing to repair either


@pytest.mark.parametrize("example", fact_examples(), ids=lambda e: e.id)
def test_each_example_gives_the_facts_its_text_claims(example: Example, tmp_path: Path) -> None:
    mapping = site_mapping_file(tmp_path) if "site-mapping" in example.kinds else ""
    visit = read_example(example, mapping)
    failures = [f for f in (check(visit, c) for c in example.claims) if f]
    assert failures == [], f"docs/fhir-input.md line {example.line}: {failures}"


def test_site_mapped_examples_say_nothing_without_the_mapping() -> None:
    """The local codes of the site-mapping example mean nothing on their own: the mapping does the work."""
    mapped = [e for e in fact_examples() if "site-mapping" in e.kinds]
    assert mapped
    for example in mapped:
        visit = read_example(example)
        assert not visit.refilled and not visit.changes and visit.activity_source == "none"


def test_the_claim_checker_rejects_wrong_claims() -> None:
    visit = PumpVisit(hook="order-sign", date_of_service=dt.date(2026, 11, 20), refilled=True,
                      changes=(ParameterChange("daily-dose", "400 mcg/d", "450 mcg/d", "Observation/o"),),
                      documented=frozenset({"doc-route"}))
    assert check(visit, "refilled=true") is None and check(visit, "refilled=false")
    assert check(visit, "changes[0].old=400 mcg/d") is None and check(visit, "changes[0].old=450 mcg/d")
    assert check(visit, "documented~doc-route") is None and check(visit, "documented~doc-route,doc-duration")
    assert check(visit, "date_of_service=2026-11-20") is None and check(visit, "date_of_service=2026-11-21")
    assert check(visit, "drug.hcpcs=J0475")  # no drug: an error, not a pass
    assert check(visit, "changes[1].old=x") and check(visit, "code(62369).units=1")
    assert check(visit, "reprogrammed(conservative)=true") is None
    assert check(visit, "reprogrammed(any-parameter)=false")


def _backticked(text: str) -> set[str]:
    return set(re.findall(r"`([^`\n]+)`", text))


def test_every_pumpcds_concept_is_documented() -> None:
    quoted = _backticked(DOC.read_text(encoding="utf-8"))
    codes = []
    for group in codesystem()["concept"]:
        codes.append(group["code"])
        codes.extend(c["code"] for c in group.get("concept", []))
    assert len(codes) == codesystem()["count"]
    assert [c for c in codes if c not in quoted] == []


def test_every_prefetch_template_is_listed_with_whether_it_is_required() -> None:
    text = DOC.read_text(encoding="utf-8")
    for service in build_services(load_settings(environ={})).values():
        heading = next(line for line in text.splitlines()
                       if line.startswith("`") and line.endswith(":") and f"`{service.id}`" in line)
        section = text.split(heading, 1)[1].split("\n\n", 2)[1]
        rows = {m.group(1): (m.group(2), m.group(3)) for m in
                re.finditer(r"^\| `([^`]+)` \| `([^`]+)` \| (yes|no) \|", section, re.M)}
        assert rows == {t.key: (t.query, "yes" if t.required else "no") for t in service.prefetch}, service.id


def test_every_recognised_standard_code_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    quoted = _backticked(text)
    vocab = yaml.safe_load((DATA / "vocabulary.yaml").read_text(encoding="utf-8"))
    drugs = yaml.safe_load((DATA / "drugs.yaml").read_text(encoding="utf-8"))["drugs"]
    wanted = [u for uris in vocab["systems"].values() for u in uris]
    wanted += [str(k) for k in vocab["routes"]] + [str(k) for k in vocab["device_types"]]
    q = vocab["qualifications"]
    wanted += list(q["nucc"]) + [str(k) for k in q["snomed"]] + [d["hcpcs"] for d in drugs.values()]
    assert [w for w in wanted if w not in quoted] == []
    lowered = {x.lower() for x in quoted}
    assert [m for m in vocab["pump_models"] if m.lower() not in lowered] == []
    assert [c for c in q["v2_0360"] if c not in text] == [] and [t for t in q["text"] if t not in text] == []
    for key, drug in drugs.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| {key} |")), "")
        assert all(str(c) in row for c in drug.get("rxnorm", ())) and drug["hcpcs"] in row, key


def test_the_site_mapping_example_is_a_valid_mapping(tmp_path: Path) -> None:
    path = site_mapping_file(tmp_path)
    mapping = load_site_mapping(path)
    assert len(mapping) >= 5
    Vocabulary.load(path)  # raises ConfigError for a target that is not a pumpcds concept


def encounter_close_body(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A hook call carrying each resource under the prefetch key whose template is meant for its type."""
    service = build_services(load_settings(environ={}))["pump-visit-coding-encounter-discharge"]
    prefetch: dict[str, Any] = {}
    for template in service.prefetch:
        items = [r for r in resources if r["resourceType"] in template.types]
        if "?" in template.query:
            prefetch[template.key] = {"resourceType": "Bundle", "type": "searchset", "entry": [
                {"fullUrl": f"http://ehr.example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r} for r in items]}
        else:
            prefetch[template.key] = items[0] if items else None
    return {"hook": "encounter-discharge", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/md1", "patientId": "pat1", "encounterId": ENCOUNTER},
            "prefetch": prefetch}


def whole_visit() -> list[dict[str, Any]]:
    blocks = [e for e in fact_examples() if "whole-visit" in e.kinds]
    assert len(blocks) == 1
    return raw_resources(blocks[0].body)


def test_the_whole_visit_is_coded_right_and_fully_documented(client: Any) -> None:
    resources = whole_visit()
    resp = client.post("/cds-services/pump-visit-coding-encounter-discharge", json=encounter_close_body(resources))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["cards"] == []


def test_the_whole_visit_without_its_charge_gets_the_code_proposed(client: Any) -> None:
    """The same visit minus the 62369 charge: the service must notice (so the empty answer above means something)."""
    resources = [r for r in whole_visit() if r.get("id") != "visit-62369"]
    resp = client.post("/cds-services/pump-visit-coding-encounter-discharge", json=encounter_close_body(resources))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    cards = resp.get_json()["cards"]
    proposals = [c for c in cards if c["extension"]["pumpcds"]["ruleId"] == "SEL-MATRIX"]
    assert len(proposals) == 1
    created = [a["resource"] for s in proposals[0]["suggestions"] for a in s["actions"] if a["type"] == "create"]
    assert [c["code"] for r in created for c in r["code"]["coding"]] == ["62369"]
