"""`fhir_validation: off | relevant | strict` changes the work, never the answer: every sample gives
the same facts, findings and cards in each mode (the default `off` reads the JSON with its read
elements type-checked; `strict` validates every resource with the R4 models, as before the JSON
reader). A resource only the R4 models reject is used or reported as each mode promises."""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from service.cdshooks.invoke import invoke
from service.cdshooks.validation import check_request
from service.config import ConfigError, load_settings
from service.devtools.fhir_server import FhirTestServer
from service.fhir.client import Budget
from service.fhir.prefetch import PrefetchResolver
from service.fhir.validate import DEFAULT_VALIDATION, MODES
from service.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fhir_samples"
NAMES = sorted(p.stem for p in (SAMPLES / "requests").glob("*.json"))


@pytest.fixture(scope="module")
def runtime_for():
    built: dict[tuple[str, tuple[tuple[str, str], ...]], Runtime] = {}

    def get(mode: str, settings: dict[str, str]) -> Runtime:
        values = {k: str(ROOT / v) if k.endswith("_path") and v else v for k, v in settings.items()}
        key = (mode, tuple(sorted(values.items())))
        if key not in built:
            built[key] = Runtime.build(load_settings(environ={}, database_url="sqlite://", log_level="WARNING",
                                                     fhir_validation=mode, **values), with_store=False)
        return built[key]

    return get


def _without_uuids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_uuids(v) for k, v in value.items() if k != "uuid"}
    if isinstance(value, list):
        return [_without_uuids(v) for v in value]
    return value


def _answer(runtime: Runtime, service_id: str, body: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(facts, findings, HTTP body) of one call; messages of validators are left out (they differ by
    design: the models' wording or the type checks'), where they came from is kept."""
    request = check_request(runtime.services[service_id], copy.deepcopy(body))
    client = runtime.client_for(request, Budget(5.0))
    resources = PrefetchResolver(runtime.settings.max_prefetch_resources,
                                 validation=runtime.settings.fhir_validation).gather(request, client, "no fhirServer")
    assert resources is not None
    assessment = runtime.engine.assess(resources)
    visit = dataclasses.replace(assessment.visit, input_problems=tuple(
        (e.reference, e.date) for e in assessment.visit.input_problems))  # type: ignore[arg-type]
    findings = [(f.rule.id, f.kind.value, f.code, f.replaces, f.modifiers, f.units, f.missing, f.affected,
                 [(e.reference, None if f.rule.id == "DQ-INPUT" else e.observed, e.date) for e in f.evidence],
                 sorted((k, str(v)) for k, v in f.params.items())) for f in assessment.findings]
    result = invoke(runtime, service_id, copy.deepcopy(body))
    return visit, findings, (result.status, _without_uuids(result.body))


@pytest.mark.parametrize("name", NAMES)
def test_every_sample_gives_the_same_answer_in_every_mode(runtime_for, live_server_factory, name: str) -> None:
    expected = json.loads((SAMPLES / "expected" / f"{name}.json").read_text())
    body = json.loads((SAMPLES / "requests" / f"{name}.json").read_text())
    if expected.get("fhir_server_dir"):
        server = FhirTestServer().load_dir(SAMPLES / expected["fhir_server_dir"])
        body["fhirServer"] = f"{live_server_factory(server.wsgi()).url}/fhir"
    answers = {mode: _answer(runtime_for(mode, expected.get("settings") or {}), expected["service"], body)
               for mode in MODES}
    off = answers["off"]
    assert off[2][0] == expected.get("status", 200)
    for mode in ("relevant", "strict"):
        assert answers[mode][0] == off[0], f"{name}: facts differ between off and {mode}"
        assert answers[mode][1] == off[1], f"{name}: findings differ between off and {mode}"
        assert answers[mode][2] == off[2], f"{name}: cards differ between off and {mode}"


def test_an_unreadable_reading_is_reported_in_every_mode(runtime_for) -> None:
    """The sample's vital sign carries "132/84" as a number: skipped and reported (DQ-INPUT) whatever
    the mode; with `off` the type check finds it, with the others the models too."""
    body = json.loads((SAMPLES / "requests" / "order-sign-unreadable-observation.json").read_text())
    for mode in MODES:
        visit, findings, _ = _answer(runtime_for(mode, {}), "pump-visit-coding-order-sign", body)
        assert [ref for ref, _ in visit.input_problems] == ["prefetch:observations:Observation/obs-nettlebed-bp"], mode
        assert "DQ-INPUT" in {f[0] for f in findings}, mode


P = "http://pumpcds.org/fhir/CodeSystem/pump-visit"


def _procedure(pid: str, day: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Procedure", "id": pid, "status": "completed", "subject": {"reference": "Patient/pt1"},
            "performedDateTime": f"{day}T10:00:00Z", "code": {"coding": [{"system": P, "code": "refill"}]}, **extra}


def _request_with(resources: list[dict[str, Any]]) -> dict[str, Any]:
    order = {"resourceType": "ServiceRequest", "id": "sr", "status": "draft", "intent": "order",
             "subject": {"reference": "Patient/pt1"}, "authoredOn": "2026-11-20",
             "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "62369"}]}}
    return {"hook": "order-sign", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/md", "patientId": "pt1",
                        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}},
            "prefetch": {"procedures": {"resourceType": "Bundle", "type": "searchset",
                                        "entry": [{"resource": r} for r in resources]},
                         "device": None, "observations": None, "medicationAdministrations": None}}


@pytest.mark.parametrize("mode, reported, used", [
    ("off", [], True),  # the models are not asked; nothing the facts read is wrong
    ("relevant", ["Procedure/today"], False),  # the visit's own procedure is validated, the old one not
    ("strict", ["Procedure/today", "Procedure/old"], False),  # every resource is validated
])
def test_what_only_the_r4_models_reject_is_validated_as_far_as_the_mode_says(runtime_for, mode, reported, used) -> None:
    """`note` must be a list of Annotations; no fact reads it. An invalid resource is never used:
    where the models are asked and reject it, the refill it records is not on record (the activities
    are then taken from the chosen code)."""
    today = _procedure("today", "2026-11-20", note="refill done")
    old = _procedure("old", "2026-10-02", note="refill done")
    visit, _, _ = _answer(runtime_for(mode, {}), "pump-visit-coding-order-sign", _request_with([today, old]))
    assert [ref.rsplit(":", 1)[-1] for ref, _ in visit.input_problems if ref.startswith("prefetch:procedures:")] == reported
    assert visit.activity_source == ("documented" if used else "chosen-code")


def test_the_setting_is_read_from_the_environment_and_checked() -> None:
    assert load_settings(environ={}).fhir_validation == DEFAULT_VALIDATION == "off"
    assert load_settings(environ={"PUMPCDS_FHIR_VALIDATION": "strict"}).fhir_validation == "strict"
    with pytest.raises(ConfigError, match="fhir_validation must be one of off, relevant, strict"):
        load_settings(environ={"PUMPCDS_FHIR_VALIDATION": "lenient"})


def test_a_suggestion_never_sends_back_invalid_r4(runtime_for, caplog) -> None:
    """With `off` a draft order only the R4 models reject (its `note` is not a list) is read; the
    card still says what to bill, but no suggestion sends that order back to the EHR as it is."""
    from fhir.resources.R4B import get_fhir_model_class

    body = json.loads((SAMPLES / "requests" / "order-sign-62368-billed-as-62367.json").read_text())
    valid = invoke(runtime_for("off", {}), "pump-visit-coding-order-sign", copy.deepcopy(body)).body["cards"]
    updates = [a["resource"] for c in valid for s in c.get("suggestions", []) for a in s["actions"] if a["type"] == "update"]
    assert updates and all(get_fhir_model_class(r["resourceType"]).model_validate(r) for r in updates)

    body["context"]["draftOrders"]["entry"][0]["resource"]["note"] = "free text where R4 wants a list"
    cards = invoke(runtime_for("off", {}), "pump-visit-coding-order-sign", body).body["cards"]
    assert [c["extension"]["pumpcds"]["ruleId"] for c in cards] == [c["extension"]["pumpcds"]["ruleId"] for c in valid]
    assert all("suggestions" not in c for c in cards if c["extension"]["pumpcds"]["ruleId"] == "SEL-MATRIX")
