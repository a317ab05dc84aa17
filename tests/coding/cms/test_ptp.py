"""NCCI PTP loader: synthetic file content, date windows, rejected rows, several files."""
from __future__ import annotations

import datetime as dt

import pytest

from service.coding.cms import PtpEdit, PtpTable, default_paths
from service.coding.cms.files import CmsFileError

DOS = dt.date(2026, 11, 20)
HEADER = "Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\tDeletion Date *=no data\tModifier\tPTP Edit Rationale"


@pytest.fixture(scope="module")
def ptp() -> PtpTable:
    """The bundled synthetic file, loaded once for the module as the service loads it once at start."""
    return PtpTable.load(default_paths().ptp)


def pairs(edits: list[PtpEdit]) -> set[tuple[str, str, str]]:
    return {(e.column1, e.column2, e.modifier_indicator) for e in edits}


def test_synthetic_file_is_flagged_and_fully_read(ptp: PtpTable) -> None:
    assert ptp.source is not None
    assert (ptp.source.kind, ptp.source.release, ptp.source.synthetic, ptp.source.rejected) == \
        ("ptp", "synthetic", True, ())
    assert len(ptp) == ptp.source.rows == 50


def test_pump_family_pairs_are_modifier_indicator_0(ptp: PtpTable) -> None:
    family = ["62367", "62368", "62369", "62370", "95990", "95991"]
    got = pairs(ptp.edits_for(family, DOS))
    assert {("62368", "62367", "0"), ("62369", "62367", "0"), ("62369", "62368", "0"), ("62370", "62367", "0"),
            ("62370", "62368", "0"), ("62370", "62369", "0"), ("95991", "95990", "0")} <= got
    assert {(c1, c2, "0") for c1 in family[:4] for c2 in ("95990", "95991")} <= got
    assert all(mi == "0" for _, _, mi in got)


def test_62362_and_e_m_pairs_are_modifier_indicator_1(ptp: PtpTable) -> None:
    assert pairs(ptp.edits_for(["62362", "62367", "62368"], DOS)) >= {("62362", "62367", "1"), ("62362", "62368", "1")}
    for code in ("62367", "62368", "62369", "62370", "95990", "95991"):
        for em in ("99211", "99212", "99213", "99214", "99215"):
            assert pairs(ptp.edits_for([code, em], DOS)) == {(code, em, "1")}


def test_only_edits_with_both_codes_billed_are_returned(ptp: PtpTable) -> None:
    assert ptp.edits_for(["62370"], DOS) == []
    assert ptp.edits_for(["62370", "J0475"], DOS) == []
    assert pairs(ptp.edits_for([" 62370", "62369 "], DOS)) == {("62370", "62369", "0")}


def test_deleted_edit_applies_only_before_its_deletion_date(ptp: PtpTable) -> None:
    assert ptp.edits_for(["62367", "62350"], DOS) == []
    assert ptp.edits_for(["62367", "62350"], dt.date(2015, 1, 1)) == []  # deletion date itself: gone
    assert pairs(ptp.edits_for(["62367", "62350"], dt.date(2014, 12, 31))) == {("62367", "62350", "1")}


def test_modifier_indicator_9_is_never_active(ptp: PtpTable) -> None:
    for day in (dt.date(2012, 1, 1), DOS, dt.date(2040, 1, 1)):
        assert ptp.edits_for(["62369", "62350"], day) == []


def test_edit_applies_from_its_effective_date(ptp: PtpTable) -> None:
    assert ptp.edits_for(["62370", "96523"], DOS) == []
    assert ptp.edits_for(["62370", "96523"], dt.date(2029, 12, 31)) == []
    assert pairs(ptp.edits_for(["62370", "96523"], dt.date(2030, 1, 1))) == {("62370", "96523", "1")}
    assert ptp.edits_for(["62370", "62369"], dt.date(2011, 12, 31)) == []


def test_active_on_window() -> None:
    e = PtpEdit("62370", "62369", dt.date(2020, 1, 1), dt.date(2021, 1, 1), "0", "")
    assert [e.active_on(d) for d in (dt.date(2019, 12, 31), dt.date(2020, 1, 1), dt.date(2020, 12, 31),
                                     dt.date(2021, 1, 1))] == [False, True, True, False]
    assert not PtpEdit("62370", "62369", dt.date(2020, 1, 1), None, "9", "").active_on(dt.date(2022, 1, 1))


def test_unreadable_rows_are_counted_with_line_numbers(write) -> None:
    p = write("ccipra-v313r0-f1.txt",
              "CPT codes copyright notice",
              HEADER,
              "62370\t62369\t\t20120101\t*\t0\tMutually exclusive procedures",  # line 3: fine
              "62370\t62368\t\t2012-13-45\t*\t0\tbad date",  # line 4
              "62370\t\t\t20120101\t*\t0\tno column 2",  # line 5
              "62370\t62367\t\t20120101\t*\t7\tmodifier indicator out of range",  # line 6
              "",
              "62370\t62367\t\t20120101\tsoon\t0\tbad deletion date",  # line 8
              "95991\t95990\t*\t19960101\t*\t0",  # line 9: fine, no rationale cell
              "Note: end of file")  # line 10
    t = PtpTable.load([p])
    assert t.source is not None
    assert t.source.rejected == (4, 5, 6, 8, 10)
    assert (t.source.rows, len(t), t.source.release, t.source.synthetic) == (2, 2, "2025Q4", False)
    assert pairs(t.edits_for(["95991", "95990"], DOS)) == {("95991", "95990", "0")}


def test_several_files_are_merged(write) -> None:
    a = write("ccipra-v320r0-f1.txt", "notice", HEADER, "62370\t62369\t\t20120101\t*\t0\tx")
    b = write("ccipra-v320r0-f2.txt", "notice", HEADER.replace("\t", ","), "95991,95990,,20120101,*,0,x", "bad,row")
    t = PtpTable.load([a, str(b)])
    assert len(t) == 2
    assert pairs(t.edits_for(["62370", "62369", "95990", "95991"], DOS)) == \
        {("62370", "62369", "0"), ("95991", "95990", "0")}
    assert [s.rejected for s in t.sources] == [(), (4,)]
    assert t.source is not None and t.source.rows == 2 and t.source.release == "2026Q1"
    assert t.source.path == f"{a}, {b}"


def test_empty_table_and_missing_file() -> None:
    t = PtpTable.empty()
    assert (len(t), t.source, t.edits_for(["62370", "62369"], DOS)) == (0, None, [])
    with pytest.raises(CmsFileError):
        PtpTable.load(["/nonexistent/ptp.txt"])
