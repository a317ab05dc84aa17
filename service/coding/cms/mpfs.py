"""Medicare Physician Fee Schedule payment-policy indicators from the PPRRVU file.

Layout (CMS "National Physician Fee Schedule Relative Value File", PPRRVUyy CSV): several title and
copyright lines, then HCPCS, MOD, DESCRIPTION, STATUS CODE, ..., PCTC IND, GLOB DAYS, PRE OP,
INTRA OP, POST OP, MULT PROC, BILAT SURG, ASST SURG, CO-SURG, TEAM SURG, ... One row per code and
modifier; the row with an empty MOD holds the global service.

Indicator meanings used by :meth:`MpfsTable.disallowed_modifiers` (CMS RVU file record layout,
"RVUyy" readme, as also transcribed in andrewallenbruce/northstar R/reference.R):

* PCTC IND 0: physician service; the PC/TC split does not apply, so modifiers 26 and TC are not allowed.
* BILAT SURG 0: the 150 % bilateral adjustment does not apply; modifier 50 is not appropriate.
* ASST SURG: 0 = assistant-at-surgery payment restricted unless documentation establishes medical
  necessity; 1 = statutory payment restriction, an assistant at surgery may not be paid; 2 = no
  restriction, an assistant may be paid; 9 = concept does not apply. Only 1 forbids 80/81/82/AS;
  0 allows them with documentation (left to documentation rules, not reported here).
* CO-SURG 0: co-surgeons not permitted (modifier 62).
* TEAM SURG 0: team surgeons not permitted (modifier 66).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .files import SourceFile, code_cell, contains, data_rows, exact, prefix, read_table, source_of

_REQUIRED = {
    "code": exact("HCPCS", "HCPCS CODE", "CPT/HCPCS", "HCPCS/CPT"),
    "modifier": exact("MOD", "MODIFIER"),
    "status": prefix("STATUS"),
    "pctc": contains("PCTC"),
    "global_days": contains("GLOB"),
    "mult_proc": contains("MULT PROC", "MULTIPLE PROC"),
    "bilateral": contains("BILAT"),
    "assistant": contains("ASST SURG", "ASSISTANT"),
    "co_surgeon": contains("CO-SURG", "CO SURG", "COSURG"),
    "team": contains("TEAM"),
}

#: (indicator field, value that forbids, modifiers it forbids)
_FORBIDDING = (
    ("pctc", "0", ("26", "TC")),
    ("bilateral", "0", ("50",)),
    ("assistant", "1", ("80", "81", "82", "AS")),
    ("co_surgeon", "0", ("62",)),
    ("team", "0", ("66",)),
)


@dataclass(frozen=True)
class FeeIndicators:
    code: str
    modifier: str  # "" for the global row
    status: str
    global_days: str
    pctc: str
    mult_proc: str
    bilateral: str
    assistant: str
    co_surgeon: str
    team: str


class MpfsTable:
    """Fee-schedule indicators by (code, modifier)."""

    def __init__(self, rows: dict[tuple[str, str], FeeIndicators], source: SourceFile | None = None) -> None:
        self._rows = dict(rows)
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> MpfsTable:
        table = read_table(path, _REQUIRED)
        rows: dict[tuple[str, str], FeeIndicators] = {}
        rejected: list[int] = []
        for row in data_rows(table, "code"):
            code = code_cell(table.value(row, "code"))
            values = {f: table.value(row, f).upper() for f in _REQUIRED if f != "code"}
            if code is None or not values["status"] or not values["pctc"]:
                rejected.append(row.line)
                continue
            values["global_days"] = _global_days(values["global_days"])
            rows[(code, values["modifier"])] = FeeIndicators(code=code, **values)
        return cls(rows, source_of(table, "mpfs", len(rows), rejected))

    @classmethod
    def empty(cls) -> MpfsTable:
        return cls({})

    def indicators(self, code: str, modifier: str = "") -> FeeIndicators | None:
        """The row for the code without modifier (or with `modifier`, e.g. "26")."""
        return self._rows.get((code.strip().upper(), modifier.strip().upper()))

    def disallowed_modifiers(self, code: str, modifiers: Iterable[str]) -> list[tuple[str, str, str]]:
        """(modifier, indicator field, indicator value) for each given modifier the code's indicators forbid."""
        ind = self.indicators(code)
        if ind is None:
            return []
        out: list[tuple[str, str, str]] = []
        seen: set[str] = set()
        for raw in modifiers:
            m = raw.strip().upper()
            if m in seen:
                continue
            seen.add(m)
            for field, forbidding, forbidden in _FORBIDDING:
                value = getattr(ind, field)
                if value == forbidding and m in forbidden:
                    out.append((m, field, value))
        return out

    def __len__(self) -> int:
        return len(self._rows)


def _global_days(value: str) -> str:
    """'10' or '90' from a re-saved spreadsheet back to CMS's three-character '010' / '090'."""
    return value.zfill(3) if value.isdigit() else value
