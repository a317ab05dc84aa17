"""Practitioner MUE loader."""
from __future__ import annotations

import pytest

from service.coding.cms import MueLimit, MueTable, default_paths

HEADER = '"HCPCS/CPT Code","Practitioner Services MUE Values","MUE Adjudication Indicator","MUE Rationale"'


@pytest.fixture(scope="module")
def mue() -> MueTable:
    return MueTable.load(default_paths().mue)


def test_synthetic_values(mue: MueTable) -> None:
    assert mue.limit("62370") == MueLimit("62370", 1, "2", "Nature of Service/Procedure")
    for code in ("62362", "62367", "62368", "62369", "95990", "95991", "99213"):
        limit = mue.limit(code)
        assert limit is not None and limit.value == 1, code
    j = mue.limit("j0475 ")
    assert j is not None and (j.value, j.mai) == (80, "3")
    assert mue.limit("62350") is None
    assert mue.source is not None and mue.source.synthetic and mue.source.release == "synthetic"
    assert (mue.source.rows, mue.source.rejected) == (9, ())


def test_real_layout_with_rejected_rows(write) -> None:
    p = write("MCR_MUE_PractitionerServices_Eff_10-01-2026.csv",
              '"CPT codes and descriptions only are copyright 2026 AMA, all rights reserved."',
              "",
              HEADER,
              '62370,1,"2 Date of Service Edit: Policy","Nature of Service/Procedure"',  # line 4
              '62368,one,"2 Date of Service Edit: Policy",x',  # line 5: value not a number
              '62367,1,"Date of Service Edit",x',  # line 6: no MAI digit
              '95990,2,"1 Line Edit",Clinical: Data',  # line 7
              '96522,3,"3 Date of Service Edit: Clinical"')  # line 8: no rationale cell
    t = MueTable.load(p)
    assert t.source is not None
    assert (t.source.rows, t.source.rejected, t.source.release, t.source.synthetic) == (3, (5, 6), "2026Q4", False)
    assert t.limit("95990") == MueLimit("95990", 2, "1", "Clinical: Data")
    assert t.limit("96522") == MueLimit("96522", 3, "3", "")
    assert t.limit("62368") is None


def test_empty_table() -> None:
    assert MueTable.empty().limit("62370") is None
    assert MueTable.empty().source is None


def test_tab_delimited_file(write) -> None:
    p = write("mue.txt", "notice", "HCPCS/CPT Code\tPractitioner Services MUE Values\tMUE Adjudication Indicator",
              "62370\t1\t2 Date of Service Edit: Policy")
    assert MueTable.load(p).limit("62370") == MueLimit("62370", 1, "2", "")
