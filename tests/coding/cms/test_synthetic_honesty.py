"""The bundled synthetic CMS tables are test data: production refuses them unless told otherwise,
cards resting on them say "test data" (never "verified"), and `pumpcds cms check` says what loads."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.app import create_app
from service.cli import main
from service.coding.cms import DATA_DIR
from service.config import ConfigError
from tests.conftest import load_sample

MUE_REQUEST = "requests/order-sign-mue-62369-two-units.json"


def mue_card(app) -> dict:  # type: ignore[no-untyped-def]
    body = load_sample(MUE_REQUEST)
    resp = app.test_client().post("/cds-services/pump-visit-coding-order-sign", json=body)
    assert resp.status_code == 200
    [card] = [c for c in resp.get_json()["cards"] if c["extension"]["pumpcds"]["ruleId"] == "NCCI-MUE"]
    return card


def cms_release_copy(tmp_path: Path) -> Path:
    """The synthetic MUE values under a CMS release's name, without the SYNTHETIC marker line,
    standing in for a licensed quarterly file."""
    lines = (DATA_DIR / "mue-practitioner-synthetic.csv").read_text().splitlines()
    path = tmp_path / "MCR_MUE_PractitionerServices_Eff_10-01-2026.csv"
    path.write_text("\n".join(lines[1:]) + "\n")
    return path


def test_production_mode_refuses_the_synthetic_tables(settings):
    with pytest.raises(ConfigError, match="synthetic CMS test tables .*allow_synthetic_cms"):
        create_app(settings, development_mode=False)


def test_production_mode_starts_on_synthetic_tables_only_when_allowed(settings):
    app = create_app(settings, development_mode=False, allow_synthetic_cms=True)
    assert app.extensions["pumpcds"].engine is not None


def test_a_card_from_a_synthetic_table_says_test_data_and_never_verified(settings):
    card = mue_card(create_app(settings))
    assert "test data" in card["detail"]
    assert "verified" not in json.dumps(card).lower()


def test_a_card_from_a_cms_release_keeps_the_rules_status(settings, tmp_path):
    card = mue_card(create_app(settings, ncci_mue_path=str(cms_release_copy(tmp_path))))
    assert "test data" not in card["detail"] and "verified" in card["detail"]


def test_cms_check_reports_the_release_of_each_table(monkeypatch, capsys, tmp_path):
    for name in ("PUMPCDS_NCCI_PTP_PATH", "PUMPCDS_MPFS_RVU_PATH", "PUMPCDS_DEVELOPMENT_MODE", "PUMPCDS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PUMPCDS_NCCI_MUE_PATH", str(cms_release_copy(tmp_path)))
    assert main(["cms", "check"]) == 0
    out = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "release 2026Q4" in out["MUE"] and "SYNTHETIC" not in out["MUE"]
    assert "release synthetic" in out["PTP"] and "SYNTHETIC test data" in out["PTP"]
    assert "release synthetic" in out["MPFS"]

    monkeypatch.setenv("PUMPCDS_DEVELOPMENT_MODE", "false")
    assert main(["cms", "check"]) == 1  # production would refuse the synthetic PTP and MPFS tables
    assert "production mode will refuse" in capsys.readouterr().err
