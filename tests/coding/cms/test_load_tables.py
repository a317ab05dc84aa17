"""Choosing between configured CMS files and the bundled synthetic ones."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

import service.coding.cms as cms
from service.app import create_app
from service.coding.cms import CmsTables, default_paths, load_tables
from service.config import ConfigError, load_settings

PTP_HEADER = "Column 1\tColumn 2\t*\tEffective Date\tDeletion Date\tModifier\tPTP Edit Rationale"


@pytest.fixture
def warn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget that this process already warned about synthetic data."""
    monkeypatch.setattr(cms, "_warned_synthetic", False)


def synthetic_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pumpcds.cms" and r.levelno == logging.WARNING
            and "synthetic CMS data" in r.getMessage()]


def test_default_paths_are_the_bundled_files() -> None:
    paths = default_paths()
    assert all(p.is_file() for p in (*paths.ptp, paths.mue, paths.mpfs))
    assert all(p.read_text().startswith("SYNTHETIC TEST DATA") for p in (*paths.ptp, paths.mue, paths.mpfs))


def test_unset_paths_use_synthetic_files_and_warn_once(warn_again: None, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(environ={})
    with caplog.at_level(logging.WARNING, logger="pumpcds.cms"):
        tables = load_tables(settings)
        load_tables(settings)
    assert isinstance(tables, CmsTables) and tables.synthetic
    assert [t.source.path for t in (tables.mue, tables.mpfs)] == [str(default_paths().mue), str(default_paths().mpfs)]
    assert len(synthetic_warnings(caplog)) == 1


def test_configured_files_are_used(write, warn_again: None, caplog: pytest.LogCaptureFixture) -> None:
    f1 = write("ccipra-v320r0-f1.txt", "notice", PTP_HEADER, "62370\t62369\t\t20120101\t*\t0\tx")
    f2 = write("ccipra-v320r0-f2.txt", "notice", PTP_HEADER, "95991\t95990\t\t20120101\t*\t0\tx")
    mue = write("MCR_MUE_PractitionerServices_Eff_01-01-2026.csv", "notice",
                "HCPCS/CPT Code,Practitioner Services MUE Values,MUE Adjudication Indicator,MUE Rationale",
                "62370,1,2 Date of Service Edit: Policy,x")
    rvu = write("PPRRVU26_JAN.csv", "notice",
                "HCPCS,MOD,DESCRIPTION,STATUS CODE,PCTC IND,GLOB DAYS,MULT PROC,BILAT SURG,ASST SURG,CO-SURG,TEAM SURG",
                "62370,,x,A,0,XXX,0,0,1,0,0")
    settings = load_settings(environ={"PUMPCDS_NCCI_PTP_PATH": f"{f1}, {f2}", "PUMPCDS_NCCI_MUE_PATH": str(mue),
                                      "PUMPCDS_MPFS_RVU_PATH": str(rvu)})
    with caplog.at_level(logging.WARNING, logger="pumpcds.cms"):
        tables = load_tables(settings)
    assert not tables.synthetic
    assert len(tables.ptp) == 2 and [s.path for s in tables.ptp.sources] == [str(f1), str(f2)]
    assert (tables.ptp.source.release, tables.mue.source.release, tables.mpfs.source.release) == \
        ("2026Q1", "2026Q1", "2026Q1")
    assert synthetic_warnings(caplog) == []


def test_partly_configured_falls_back_per_table(write) -> None:
    mue = write("mue.csv", "HCPCS/CPT Code,Practitioner Services MUE Values,MUE Adjudication Indicator",
                "62370,4,3 Date of Service Edit: Clinical")
    tables = load_tables(load_settings(environ={}, ncci_mue_path=str(mue)))
    assert tables.mue.limit("62370").value == 4 and not tables.mue.source.synthetic
    assert tables.ptp.source.synthetic and tables.mpfs.source.synthetic


@pytest.mark.parametrize("setting", ["ncci_ptp_path", "ncci_mue_path", "mpfs_rvu_path"])
def test_missing_configured_file_is_a_config_error(setting: str, tmp_path: Path) -> None:
    missing = tmp_path / "not-downloaded.csv"
    with pytest.raises(ConfigError, match=rf"{setting}: .*not-downloaded.csv: file not found"):
        load_tables(load_settings(environ={}, **{setting: str(missing)}))


def test_one_missing_part_of_several_ptp_files_is_a_config_error(write, tmp_path: Path) -> None:
    ok = write("f1.txt", PTP_HEADER, "62370\t62369\t\t20120101\t*\t0\tx")
    with pytest.raises(ConfigError, match="ncci_ptp_path: .*f2.txt: file not found"):
        load_tables(load_settings(environ={}, ncci_ptp_path=f"{ok},{tmp_path / 'f2.txt'}"))


def test_configured_file_of_the_wrong_kind_is_a_config_error(write) -> None:
    wrong = write("rvu.csv", "HCPCS,MOD,DESCRIPTION", "62370,,x")
    with pytest.raises(ConfigError, match="ncci_mue_path: .*no column header"):
        load_tables(load_settings(environ={}, ncci_mue_path=str(wrong)))


def test_app_does_not_start_with_a_missing_configured_file(settings, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ncci_ptp_path"):
        create_app(settings.with_overrides(ncci_ptp_path=str(tmp_path / "gone.txt")))
