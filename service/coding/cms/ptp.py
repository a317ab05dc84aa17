"""NCCI procedure-to-procedure (PTP) edits, practitioner file.

Layout (CMS "Medicare NCCI PTP edits", practitioner services, quarterly; split into several
files): Column 1, Column 2, '*' (= in existence prior to 1996), Effective Date, Deletion Date
('*' = no data, i.e. not deleted), Modifier (0 = not allowed, 1 = allowed, 9 = not applicable),
PTP Edit Rationale. Dates are YYYYMMDD. A few copyright/title lines precede the header.
"""
from __future__ import annotations

import datetime as dt
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .files import (
    SourceFile,
    code_cell,
    contains,
    data_rows,
    exact,
    prefix,
    read_table,
    source_of,
)

MODIFIER_INDICATORS = ("0", "1", "9")

_REQUIRED = {
    "column1": exact("Column 1", "Column1", "Col 1"),
    "column2": exact("Column 2", "Column2", "Col 2"),
    "effective": contains("effective"),
    "deletion": contains("deletion"),
    "modifier": prefix("modifier"),
}
_OPTIONAL = {
    "rationale": contains("rationale"),
    "prior_1996": contains("prior to 1996", "in existence", "existence"),
}


@dataclass(frozen=True, slots=True)
class PtpEdit:
    """One pair edit. Column 2 is the code normally denied when both are billed without a bypass."""

    column1: str
    column2: str
    effective: dt.date
    deletion: dt.date | None
    modifier_indicator: str  # "0" | "1" | "9"
    rationale: str

    def active_on(self, day: dt.date) -> bool:
        """In force on the date of service. MI 9 marks a deleted/not-applicable edit: never active."""
        if self.modifier_indicator == "9":
            return False
        return self.effective <= day and (self.deletion is None or day < self.deletion)


class PtpTable:
    """All practitioner PTP edits, indexed by Column 1 code."""

    def __init__(self, edits: Iterable[PtpEdit], sources: Sequence[SourceFile] = ()) -> None:
        self._by_column1: dict[str, list[PtpEdit]] = defaultdict(list)
        count = 0
        for e in edits:
            self._by_column1[e.column1].append(e)
            count += 1
        self._count = count
        #: One entry per loaded file (CMS splits the practitioner file in four parts).
        self.sources: tuple[SourceFile, ...] = tuple(sources)
        #: Summary of all files: paths joined by ", ", rows summed; `rejected` lists line numbers of
        #: every file (use `sources` to tell which file they belong to).
        self.source: SourceFile | None = _combine(self.sources)

    @classmethod
    def load(cls, paths: Sequence[str | Path] | str | Path) -> PtpTable:
        if isinstance(paths, (str, Path)):
            paths = [paths]
        edits: list[PtpEdit] = []
        sources = []
        for path in paths:
            file_edits, source = _load_file(path)
            edits.extend(file_edits)
            sources.append(source)
        return cls(edits, sources)

    @classmethod
    def empty(cls) -> PtpTable:
        return cls(())

    def edits_for(self, codes: Iterable[str], day: dt.date) -> list[PtpEdit]:
        """Every edit active on `day` whose Column 1 and Column 2 codes are both among `codes`."""
        wanted = {c.strip().upper() for c in codes}
        found = [e for c in sorted(wanted) for e in self._by_column1.get(c, ())
                 if e.column2 in wanted and e.active_on(day)]
        return found

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"PtpTable({self._count} edits, release={self.source.release if self.source else None})"


_DATE_CACHE: dict[str, dt.date | None] = {}


def parse_date(value: str) -> dt.date | None:
    """YYYYMMDD as CMS writes it; also YYYY-MM-DD and MM/DD/YYYY from re-saved spreadsheets.

    Cached: a release holds a few thousand distinct dates over more than a million rows.
    """
    v = value.strip()
    try:
        return _DATE_CACHE[v]
    except KeyError:
        pass
    parsed: dt.date | None = None
    if len(v) == 8 and v.isdigit():
        try:
            parsed = dt.date(int(v[:4]), int(v[4:6]), int(v[6:]))
        except ValueError:
            parsed = None
    else:
        for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%Y-%m-%d %H:%M:%S"):
            try:
                parsed = dt.datetime.strptime(v, fmt).date()
                break
            except ValueError:
                continue
    if len(_DATE_CACHE) < 100_000:
        _DATE_CACHE[v] = parsed
    return parsed


def _load_file(path: str | Path) -> tuple[list[PtpEdit], SourceFile]:
    table = read_table(path, _REQUIRED, _OPTIONAL)
    edits: list[PtpEdit] = []
    rejected: list[int] = []
    pick = table.picker("column1", "column2", "effective", "deletion", "modifier", "rationale")
    for row in data_rows(table, "column1"):
        edit = _edit(*pick(row))
        if edit is None:
            rejected.append(row.line)
        else:
            edits.append(edit)
    return edits, source_of(table, "ptp", len(edits), rejected)


def _edit(col1: str, col2: str, effective: str, deletion: str, modifier: str, rationale: str) -> PtpEdit | None:
    c1, c2 = code_cell(col1), code_cell(col2)
    eff = parse_date(effective)
    dele = None if deletion in ("", "*") else parse_date(deletion)
    mi = modifier[:-2] if modifier.endswith(".0") else modifier  # "1.0" from a re-saved spreadsheet
    if c1 is None or c2 is None or eff is None or mi not in MODIFIER_INDICATORS:
        return None
    if deletion not in ("", "*") and dele is None:
        return None
    return PtpEdit(c1, c2, eff, dele, sys.intern(mi), _rationale(rationale))


_RATIONALES: dict[str, str] = {}


def _rationale(text: str) -> str:
    """One shared string per distinct rationale (a few dozen phrases over a million rows)."""
    try:
        return _RATIONALES[text]
    except KeyError:
        clean = sys.intern(" ".join(text.split()))
        if len(_RATIONALES) < 10_000:
            _RATIONALES[text] = clean
        return clean


def _combine(sources: Sequence[SourceFile]) -> SourceFile | None:
    if not sources:
        return None
    if len(sources) == 1:
        return sources[0]
    releases = sorted({s.release for s in sources})
    return SourceFile(
        path=", ".join(s.path for s in sources), kind="ptp", release="+".join(releases),
        synthetic=any(s.synthetic for s in sources), rows=sum(s.rows for s in sources),
        rejected=tuple(n for s in sources for n in s.rejected))
