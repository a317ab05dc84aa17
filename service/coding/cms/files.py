"""Reading CMS tabular files: encoding, delimiter sniffing, preamble skipping, header finding.

CMS publishes the NCCI PTP, MUE and PPRRVU files with a few copyright/title lines before the
column header, sometimes with the header split over two or three rows (or with line breaks inside
a header cell in the xlsx-derived versions), and the spelling of the headings drifts between
releases. So columns are located by *normalised header names* rather than by position, and rows
that cannot be read are counted with their line numbers instead of failing the whole load.
"""
from __future__ import annotations

import codecs
import csv
import itertools
import logging
import operator
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TextIO

log = logging.getLogger("pumpcds.cms")

#: How many leading rows may hold preamble before the column header must have appeared.
MAX_PREAMBLE_ROWS = 60
#: Header rows that may be stacked (a heading split over several rows).
MAX_STACKED_HEADER_ROWS = 3
#: HCPCS Level I/II codes: 5 digits (CPT), 4 digits + letter (CPT II/III, PLA), or a letter + 4 digits (Level II).
CODE_RE = re.compile(r"^(?:\d{5}|\d{4}[A-Z]|[A-Z]\d{4})$")

_QUARTER_RE = re.compile(r"\b(20\d\d)\s*[-_ ]?\s*Q([1-4])\b", re.IGNORECASE)
_NCCI_VERSION_RE = re.compile(r"cci\w*?-v(\d\d)(\d)r\d+", re.IGNORECASE)
_EFF_DATE_RE = re.compile(r"eff\w*?[_ -]+(\d{1,2})[-_/](\d{1,2})[-_/](20\d\d)", re.IGNORECASE)
_RVU_NAME_RE = re.compile(r"(?:pprrvu|rvu)[_ -]?(\d\d)[_ -]?(jan|apr|jul|oct|[a-d])\b", re.IGNORECASE)
_MONTH_QUARTER = {"jan": 1, "apr": 2, "jul": 3, "oct": 4, "a": 1, "b": 2, "c": 3, "d": 4}


class CmsFileError(ValueError):
    """A CMS file cannot be used at all (missing, unreadable, or no recognisable column header)."""


@dataclass(frozen=True)
class SourceFile:
    """Where a loaded table came from, so findings can cite the file release they rest on."""

    path: str
    kind: str  # "ptp" | "mue" | "mpfs"
    release: str  # e.g. "2026Q4", "synthetic" or "unknown"
    synthetic: bool  # the file's first line says SYNTHETIC: bundled test data, not a CMS release
    rows: int  # data rows read successfully
    rejected: tuple[int, ...]  # 1-based line numbers of rows that could not be read


def normalise_header(text: str) -> str:
    """Lower-case and keep only letters, digits and '*': 'Column 1', 'COLUMN1' and 'column\\n1' agree."""
    return re.sub(r"[^a-z0-9*]", "", text.lower())


# A column matcher gets a normalised header cell and says whether it is the wanted column.
Matcher = Callable[[str], bool]


def exact(*names: str) -> Matcher:
    wanted = {normalise_header(n) for n in names}
    return lambda h: h in wanted


def prefix(*names: str) -> Matcher:
    wanted = tuple(normalise_header(n) for n in names)
    return lambda h: h.startswith(wanted)


def contains(*names: str) -> Matcher:
    wanted = tuple(normalise_header(n) for n in names)
    return lambda h: any(w in h for w in wanted)


class Row(NamedTuple):
    line: int  # 1-based line number where the row starts
    cells: tuple[str, ...]

    def get(self, index: int) -> str:
        return self.cells[index].strip() if index < len(self.cells) else ""


@dataclass(frozen=True)
class Table:
    """A located header with the column index of each wanted field; data rows are streamed.

    Rows are read lazily (a practitioner PTP part has hundreds of thousands of rows, so holding
    them all as parsed cells would cost far more memory than the edits themselves).
    """

    path: Path
    columns: Mapping[str, int]
    preamble: tuple[str, ...]  # the non-empty text of the lines before the header
    first_line: str
    encoding: str
    delimiter: str
    header_rows: int  # rows up to and including the header (skipped when streaming)

    @property
    def rows(self) -> Iterator[Row]:
        """The rows after the header, in file order."""
        with _open(self.path, self.encoding) as f:
            for i, row in enumerate(_rows(f, self.delimiter)):
                if i >= self.header_rows:
                    yield row

    def value(self, row: Row, field: str) -> str:
        index = self.columns.get(field)
        return "" if index is None else row.get(index)

    def picker(self, *fields: str) -> Callable[[Row], list[str]]:
        """A fast reader of several fields' stripped cells ("" for a missing column or short row)."""
        indexes = [self.columns.get(f) for f in fields]
        width = max((i for i in indexes if i is not None), default=0) + 1
        getter = operator.itemgetter(*[width if i is None else i for i in indexes], width)
        pad = ("",) * (width + 1)

        def pick(row: Row) -> list[str]:
            cells = row.cells
            cells = cells[:width] + ("",) if len(cells) >= width else cells + pad
            return [c.strip() for c in getter(cells)[:-1]]

        return pick


def read_table(path: str | Path, required: Mapping[str, Matcher],
               optional: Mapping[str, Matcher] | None = None) -> Table:
    """Locate the header holding all `required` fields in a CSV, tab- or pipe-delimited file."""
    p = Path(path)
    encoding = _encoding(p)
    optional = optional or {}
    with _open(p, encoding) as f:
        head = f.read(_HEAD_CHARS)
    for delimiter in _delimiters_by_likelihood(head):
        with _open(p, encoding) as f:
            rows = list(itertools.islice(_rows(f, delimiter), MAX_PREAMBLE_ROWS))
        found = _find_header(rows, required, optional)
        if found is None:
            continue
        header_start, header_end, columns = found
        preamble = tuple(" ".join(c.strip() for c in r.cells if c.strip()) for r in rows[:header_start])
        first_line = head.split("\n", 1)[0].strip()
        return Table(p, columns, tuple(x for x in preamble if x), first_line, encoding, delimiter, header_end)
    raise CmsFileError(
        f"{p}: no column header with {', '.join(required)} in the first {MAX_PREAMBLE_ROWS} rows "
        "(is this the right CMS file, saved as CSV or tab-delimited text?)")


_HEAD_CHARS = 64 * 1024


def _encoding(p: Path) -> str:
    """UTF-8 (with or without BOM) when the whole file decodes as such, else Windows-1252 (common at CMS)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with p.open("rb") as f:
            first = f.read(4)
            if first[:2] == b"PK" or p.suffix.lower() in (".xlsx", ".xls", ".zip"):
                raise CmsFileError(f"{p}: spreadsheet or zip archive; save the sheet as CSV or use the .txt release")
            f.seek(0)
            while chunk := f.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except FileNotFoundError:
        raise CmsFileError(f"{p}: file not found") from None
    except UnicodeDecodeError:
        return "cp1252"
    except OSError as exc:
        raise CmsFileError(f"{p}: cannot read: {exc}") from exc
    return "utf-8-sig"


def _open(p: Path, encoding: str) -> TextIO:
    return p.open(encoding=encoding, errors="replace", newline="")


def _delimiters_by_likelihood(text: str) -> list[str]:
    sample = text[:20000]
    counts = {d: sample.count(d) for d in ("\t", ",", "|")}
    return sorted(counts, key=lambda d: -counts[d])


def _rows(f: TextIO, delimiter: str) -> Iterator[Row]:
    unquoted = delimiter == "\t"
    reader = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE if unquoted else csv.QUOTE_MINIMAL)
    previous_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            cells = ["\x00unreadable"]  # e.g. an unterminated quote: reported as a rejected row
        start, previous_end = previous_end + 1, reader.line_num
        if unquoted:
            cells = [_unquote(c) if '"' in c else c for c in cells]
        yield Row(start, tuple(cells))


def _unquote(cell: str) -> str:
    s = cell.strip()
    return s[1:-1].replace('""', '"') if len(s) >= 2 and s[0] == s[-1] == '"' else cell


def _find_header(rows: Sequence[Row], required: Mapping[str, Matcher],
                 optional: Mapping[str, Matcher]) -> tuple[int, int, dict[str, int]] | None:
    """Return (index of the first header row, index of the first row after it, field -> column) or None.

    Tries each row alone, then stacked with up to two rows above it (cells joined column by
    column), so a heading split as "STATUS" / "CODE" over two rows is still found.
    """
    for i in range(min(len(rows), MAX_PREAMBLE_ROWS)):
        for height in range(1, MAX_STACKED_HEADER_ROWS + 1):
            if height > i + 1:
                break
            block = rows[i + 1 - height:i + 1]
            width = max(len(r.cells) for r in block)
            headers = [normalise_header(" ".join(r.get(c) for r in block)) for c in range(width)]
            columns = _match_columns(headers, required)
            if columns is not None:
                columns.update(_match_columns(headers, optional, partial=True) or {})
                return i + 1 - height, i + 1, columns
    return None


def _match_columns(headers: Sequence[str], wanted: Mapping[str, Matcher],
                   partial: bool = False) -> dict[str, int] | None:
    columns: dict[str, int] = {}
    taken: set[int] = set()
    for field, matcher in wanted.items():
        index = next((i for i, h in enumerate(headers) if h and i not in taken and matcher(h)), None)
        if index is None:
            if partial:
                continue
            return None
        columns[field] = index
        taken.add(index)
    return columns


def is_blank(row: Row) -> bool:
    return not "".join(row.cells).strip()


def code_cell(value: str) -> str | None:
    """The HCPCS/CPT code in a cell, upper-cased, or None when the cell holds no code.

    A file re-saved from the xlsx release can hold numeric codes as '100' or '80053.0'; the
    leading zeros of anesthesia codes (00100-01999) are restored.
    """
    try:
        return _CODE_CACHE[value]
    except KeyError:
        pass
    v = value.strip().upper()
    if v.endswith(".0") and v[:-2].isdigit():
        v = v[:-2]
    if v.isdigit() and 3 <= len(v) < 5:
        v = v.zfill(5)
    code = sys.intern(v) if CODE_RE.match(v) else None
    if len(_CODE_CACHE) < 200_000:  # distinct HCPCS codes number in the tens of thousands
        _CODE_CACHE[value] = code
    return code


_CODE_CACHE: dict[str, str | None] = {}


def detect_release(path: Path, first_line: str, preamble: Sequence[str]) -> str:
    """The release quarter, from the preamble text first and the CMS file-name conventions second.

    NCCI versions count from 1994 (v31.3 = 2025 Q4); MUE names carry the effective date
    ("..._Eff_10-01-2025"); RVU files carry the year and release letter or month (RVU25D, PPRRVU25_OCT).
    """
    if "SYNTHETIC" in first_line.upper():
        return "synthetic"
    for text in (*preamble, path.name):
        if m := _QUARTER_RE.search(text):
            return f"{m.group(1)}Q{m.group(2)}"
    name = path.name
    if m := _NCCI_VERSION_RE.search(name):
        return f"{1994 + int(m.group(1))}Q{min(int(m.group(2)) + 1, 4)}"
    for text in (name, *preamble):
        if m := _EFF_DATE_RE.search(text):
            return f"{m.group(3)}Q{(int(m.group(1)) - 1) // 3 + 1}"
    if m := _RVU_NAME_RE.search(name):
        return f"20{m.group(1)}Q{_MONTH_QUARTER[m.group(2).lower()]}"
    return "unknown"


def source_of(table: Table, kind: str, rows: int, rejected: Sequence[int]) -> SourceFile:
    """Describe a loaded file and log (once per load) how many rows were rejected."""
    synthetic = "SYNTHETIC" in table.first_line.upper()
    release = detect_release(table.path, table.first_line, table.preamble)
    if rejected:
        shown = ", ".join(str(n) for n in list(rejected)[:10]) + (" ..." if len(rejected) > 10 else "")
        log.warning("CMS %s file %s: %d row(s) could not be read (lines %s)", kind, table.path.name,
                    len(rejected), shown)
    log.info("CMS %s file %s loaded: release %s, %d rows", kind, table.path.name, release, rows)
    return SourceFile(str(table.path), kind, release, synthetic, rows, tuple(rejected))


def data_rows(table: Table, key_field: str) -> Iterator[Row]:
    """The rows after the header, without blank rows and without header continuation rows.

    Rows between the header and the first row whose key column holds a code are the rest of a
    multi-row heading (the PTP xlsx/txt releases explain '*=no data' and the modifier values
    there), not data, so they are skipped rather than reported as rejected.
    """
    started = False
    for row in table.rows:
        if is_blank(row):
            continue
        if not started and code_cell(table.value(row, key_field)) is None:
            continue
        started = True
        yield row
