"""Header finding, delimiter sniffing and release detection shared by the three loaders."""
from __future__ import annotations

from pathlib import Path

import pytest

from service.coding.cms.files import CmsFileError, code_cell, contains, detect_release, exact, read_table

REQUIRED = {"code": exact("HCPCS"), "value": contains("mue value"), "mai": contains("adjudication")}


def test_header_is_found_after_a_preamble_in_csv(write) -> None:
    p = write("m.csv", "Some title line", '"Copyright, with a comma"', "", "HCPCS,MUE Value,Adjudication", "62370,1,2")
    t = read_table(p, REQUIRED)
    assert dict(t.columns) == {"code": 0, "value": 1, "mai": 2}
    rows = list(t.rows)
    assert [r.cells for r in rows] == [("62370", "1", "2")]
    assert rows[0].line == 5
    assert t.preamble == ("Some title line", "Copyright, with a comma")


def test_tab_delimited_text_is_sniffed(write) -> None:
    p = write("m.txt", "title, with commas, here", "HCPCS\tMUE Value\tAdjudication", "62370\t1\t2")
    t = read_table(p, REQUIRED)
    assert next(t.rows).cells == ("62370", "1", "2")


def test_odd_header_spelling_extra_and_reordered_columns(write) -> None:
    # upper/lower case, a line break inside a quoted heading, an extra column, another order
    p = write("m.csv", 'extra,"  ADJUDICATION\nindicator ", hcpcs ,"mue\nVALUES"', "x,3,J0475,80")
    t = read_table(p, REQUIRED)
    assert dict(t.columns) == {"code": 2, "value": 3, "mai": 1}
    assert next(t.rows).line == 4  # two line breaks inside headings: the header spans lines 1-3


def test_heading_split_over_two_rows(write) -> None:
    p = write("m.csv", "title", ",MUE,", "HCPCS,VALUE,ADJUDICATION", "62370,1,2")
    t = read_table(p, REQUIRED)
    assert dict(t.columns) == {"code": 0, "value": 1, "mai": 2}
    assert next(t.rows).cells[0] == "62370"


def test_windows_1252_text_is_read(write) -> None:
    p = write("m.txt", "\u00a9 2026 title", "HCPCS\tMUE Value\tAdjudication", "62370\t1\t2", encoding="cp1252")
    assert read_table(p, REQUIRED).preamble == ("\u00a9 2026 title",)


def test_file_without_the_columns_is_an_error(write) -> None:
    p = write("m.csv", "HCPCS,Something else", "62370,1")
    with pytest.raises(CmsFileError, match="no column header"):
        read_table(p, REQUIRED)


def test_missing_file_and_spreadsheet_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CmsFileError, match="file not found"):
        read_table(tmp_path / "nope.csv", REQUIRED)
    x = tmp_path / "ptp.xlsx"
    x.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(CmsFileError, match="save the sheet as CSV"):
        read_table(x, REQUIRED)


@pytest.mark.parametrize(("name", "first", "preamble", "release"), [
    ("ptp.txt", "SYNTHETIC TEST DATA - NOT A CMS RELEASE", (), "synthetic"),
    ("ptp.txt", "x", ("Practitioner edits 2026 Q1",), "2026Q1"),
    ("ccipra-v313r0-f1.txt", "x", (), "2025Q4"),
    ("ccipra-v320r0-f2.txt", "x", (), "2026Q1"),
    ("MCR_MUE_PractitionerServices_Eff_07-01-2026.csv", "x", (), "2026Q3"),
    ("PPRRVU26_APR.csv", "x", (), "2026Q2"),
    ("whatever.csv", "x", (), "unknown"),
])
def test_release_is_taken_from_preamble_or_cms_file_name(name: str, first: str, preamble: tuple[str, ...],
                                                       release: str) -> None:
    assert detect_release(Path(name), first, preamble) == release


@pytest.mark.parametrize(("cell", "code"), [
    ("62370", "62370"), (" j0475 ", "J0475"), ("0001U", "0001U"), ("80053.0", "80053"), ("100", "00100"),
    ("", None), ("HCPCS", None), ("6237", "06237"), ("62", None), ("623700", None), ("62370A", None),
])
def test_code_cells(cell: str, code: str | None) -> None:
    assert code_cell(cell) == code


def test_windows_1252_byte_far_down_the_file_is_read(tmp_path: Path) -> None:
    # the encoding is decided on the whole file, not on the first block
    body = "HCPCS\tMUE Value\tAdjudication\n" + "62370\t1\t2\n" * 20000 + "62368\t1\t2 caf\u00e9\n"
    p = tmp_path / "m.txt"
    p.write_bytes(body.encode("cp1252"))
    t = read_table(p, REQUIRED)
    rows = list(t.rows)
    assert t.encoding == "cp1252" and len(rows) == 20001
    assert rows[-1].cells == ("62368", "1", "2 caf\u00e9")
