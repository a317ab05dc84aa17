"""PPRRVU loader and the modifiers the fee-schedule indicators forbid."""
from __future__ import annotations

import pytest

from service.coding.cms import FeeIndicators, MpfsTable, default_paths

COLUMNS = ["HCPCS", "MOD", "DESCRIPTION", "STATUS CODE", "WORK RVU", "PCTC IND", "GLOB DAYS", "PRE OP",
           "MULT PROC", "BILAT SURG", "ASST SURG", "CO-SURG", "TEAM SURG", "CONV FACTOR"]


def line(code: str, mod: str = "", status: str = "A", pctc: str = "0", glob: str = "XXX", mult: str = "0",
         bilat: str = "0", asst: str = "1", co: str = "0", team: str = "0") -> str:
    return ",".join([code, mod, "label", status, "1.00", pctc, glob, "0.00", mult, bilat, asst, co, team, "33.4009"])


@pytest.fixture(scope="module")
def mpfs() -> MpfsTable:
    return MpfsTable.load(default_paths().mpfs)


def test_62370_indicators_match_the_verified_values(mpfs: MpfsTable) -> None:
    assert mpfs.indicators("62370") == FeeIndicators("62370", "", "A", "XXX", "0", "0", "0", "1", "0", "0")
    assert mpfs.indicators("J0475") is None  # drugs are not in the PPRRVU file
    assert mpfs.source is not None and mpfs.source.synthetic and mpfs.source.rows == 8


def test_disallowed_modifiers_per_indicator(mpfs: MpfsTable) -> None:
    got = mpfs.disallowed_modifiers("62370", ["26", "tc", "50", "80", "81", "82", "AS", "62", "66", "59", "25", "26"])
    assert got == [("26", "pctc", "0"), ("TC", "pctc", "0"), ("50", "bilateral", "0"), ("80", "assistant", "1"),
                   ("81", "assistant", "1"), ("82", "assistant", "1"), ("AS", "assistant", "1"),
                   ("62", "co_surgeon", "0"), ("66", "team", "0")]
    assert mpfs.disallowed_modifiers("62370", ["59", "JZ"]) == []
    assert mpfs.disallowed_modifiers("J0475", ["26"]) == []  # unknown code: nothing to say


@pytest.mark.parametrize(("kwargs", "modifiers", "expected"), [
    ({"pctc": "1"}, ["26", "TC"], []),
    ({"pctc": "0"}, ["26"], [("26", "pctc", "0")]),
    ({"bilat": "1"}, ["50"], []),
    ({"bilat": "0"}, ["50"], [("50", "bilateral", "0")]),
    ({"asst": "0"}, ["80", "AS"], []),  # restricted unless documented: allowed with documentation
    ({"asst": "2"}, ["80"], []),
    ({"asst": "9"}, ["80"], []),
    ({"asst": "1"}, ["82"], [("82", "assistant", "1")]),
    ({"co": "1"}, ["62"], []),
    ({"co": "0"}, ["62"], [("62", "co_surgeon", "0")]),
    ({"team": "2"}, ["66"], []),
    ({"team": "0"}, ["66"], [("66", "team", "0")]),
])
def test_each_indicator_value(write, kwargs: dict[str, str], modifiers: list[str],
                              expected: list[tuple[str, str, str]]) -> None:
    p = write("PPRRVU26_JAN.csv", ",".join(COLUMNS), line("62362", **kwargs))
    assert MpfsTable.load(p).disallowed_modifiers("62362", modifiers) == expected


def test_stacked_heading_modifier_rows_and_rejected_rows(write) -> None:
    top = ",,,STATUS,WORK,PCTC,GLOB,PRE,MULT,BILAT,ASST,CO-,TEAM,CONV"
    bottom = "HCPCS,MOD,DESCRIPTION,CODE,RVU,IND,DAYS,OP,PROC,SURG,SURG,SURG,SURG,FACTOR"
    p = write("PPRRVU26_JAN.csv",
              '"2026 NATIONAL PHYSICIAN FEE SCHEDULE RELATIVE VALUE FILE, JANUARY RELEASE"',
              top, bottom,
              line("70450", pctc="1"),  # line 4
              line("70450", mod="26", pctc="1"),  # line 5
              line("62362", glob="10", mult="2"),  # line 6: glob as a spreadsheet would save it
              ",,orphan,A",  # line 7: no code
              line("62350", status=""))  # line 8: no status
    t = MpfsTable.load(p)
    assert t.source is not None
    assert (t.source.rows, t.source.rejected, t.source.release) == (3, (7, 8), "2026Q1")
    assert t.indicators("70450") is not None and t.indicators("70450").modifier == ""
    assert t.indicators("70450", "26") is not None
    assert t.indicators("62362").global_days == "010"
    assert t.indicators("62350") is None


def test_empty() -> None:
    assert MpfsTable.empty().indicators("62370") is None
    assert MpfsTable.empty().disallowed_modifiers("62370", ["26"]) == []
