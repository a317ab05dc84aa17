"""Issue 4's "done when", end to end over real HTTP on SQLite and on the real PostgreSQL.

The README's sample (an RN analysed, reprogrammed and refilled a programmable pump; the draft order
says 95990) must give exactly one critical or warning card, with a suggestion that, applied to the
draft order, yields a valid R4 ServiceRequest coded 62369. Accepting that suggestion through the
feedback endpoint must then show up in `pumpcds feedback-report` under the card's rule.
"""
from __future__ import annotations

import copy
import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from fhir.resources.R4B.servicerequest import ServiceRequest

from service import cli
from service.app import create_app
from service.cdshooks.services import ORDER_SIGN_SERVICE_ID

from .conftest import LiveServer, install_response_check
from .store.helpers import postgres_schema, reachable

SAMPLE = Path(__file__).resolve().parents[1] / "fhir_samples" / "requests" / "order-sign-62369-staff-refill.json"
CPT_SYSTEMS = {"http://www.ama-assn.org/go/cpt", "https://www.ama-assn.org/go/cpt"}


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pumpcds.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not reachable(5432):
        pytest.skip("PostgreSQL on 127.0.0.1:5432 not reachable: the end-to-end PostgreSQL run is skipped")
    with postgres_schema("pumpcds_e2e") as url:
        yield url


def _apply(actions: list[dict[str, Any]], drafts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What an EHR does with a suggestion: create adds, update replaces by id, delete removes."""
    result = copy.deepcopy(drafts)
    for action in actions:
        if action["type"] == "create":
            result.append(action["resource"])
        elif action["type"] == "update":
            new = action["resource"]
            result = [new if (r["resourceType"], r.get("id")) == (new["resourceType"], new.get("id")) else r
                      for r in result]
        elif action["type"] == "delete":
            result = [r for r in result if f"{r['resourceType']}/{r.get('id')}" != action["resourceId"][0]]
    return result


def _cpt_codes(resource: dict[str, Any]) -> set[str]:
    return {c["code"] for c in resource.get("code", {}).get("coding", []) if c.get("system") in CPT_SYSTEMS}


def _round_trip(database_url: str, settings_factory: Any, tmp_path: Path, capsys: Any) -> None:
    app = create_app(settings_factory(database_url))
    problems = install_response_check(app)
    body = json.loads(SAMPLE.read_text())
    drafts = [e["resource"] for e in body["context"]["draftOrders"]["entry"]]
    assert any("95990" in _cpt_codes(r) for r in drafts), "the sample's draft order must carry the wrong code"

    with LiveServer(app) as server:
        base = f"{server.url}/cds-services/{ORDER_SIGN_SERVICE_ID}"
        resp = requests.post(base, json=body, timeout=30)
        assert resp.status_code == 200, resp.text
        cards = resp.json()["cards"]
        loud = [c for c in cards if c["indicator"] in ("critical", "warning")]
        assert len(loud) == 1, [c["summary"] for c in cards]
        [card] = loud
        assert "62369" in card["summary"] and "95990" in card["summary"]
        assert len(card["summary"]) < 140
        [best] = [s for s in card["suggestions"] if s.get("isRecommended")]

        applied = _apply(best["actions"], drafts)
        pump_orders = [r for r in applied if r["resourceType"] == "ServiceRequest" and _cpt_codes(r) & {"62369", "95990"}]
        assert [_cpt_codes(r) & {"62369", "95990"} for r in pump_orders] == [{"62369"}]
        ServiceRequest.model_validate(pump_orders[0])  # a valid R4 resource, not just a dict

        now = datetime.now(UTC).isoformat()
        feedback = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": now,
                                  "acceptedSuggestions": [{"id": best["uuid"]}]}]}
        assert requests.post(f"{base}/feedback", json=feedback, timeout=30).status_code == 200
    assert problems == []

    rule_id = card["extension"]["pumpcds"]["ruleId"]
    csv_path = tmp_path / "report.csv"
    capsys.readouterr()
    assert cli.main(["feedback-report", "--database-url", database_url, "--csv", str(csv_path)]) == 0
    assert rule_id in capsys.readouterr().out
    with csv_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    [row] = [r for r in rows if r.get("rule_id") == rule_id]
    assert (row["cards_issued"], row["feedback_items"], row["accepted"], row["overridden"]) == ("1", "1", "1", "0")


@pytest.fixture
def settings_factory():
    from service.config import load_settings

    return lambda url: load_settings(environ={}, database_url=url)


def test_wrong_code_gives_one_card_whose_acceptance_is_reported_sqlite(sqlite_url, settings_factory, tmp_path, capsys):
    _round_trip(sqlite_url, settings_factory, tmp_path, capsys)


@pytest.mark.postgres
def test_wrong_code_gives_one_card_whose_acceptance_is_reported_postgresql(postgres_url, settings_factory, tmp_path,
                                                                           capsys):
    _round_trip(postgres_url, settings_factory, tmp_path, capsys)
