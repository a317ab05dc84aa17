"""Medically Unlikely Edits, practitioner services file.

Layout (CMS practitioner MUE table, quarterly CSV): a few copyright lines, then the columns
"HCPCS/CPT Code", "Practitioner Services MUE Values", "MUE Adjudication Indicator" (text such as
"2 Date of Service Edit: Policy"; the leading digit is the MAI) and "MUE Rationale".

MAI meanings (Noridian JF and Palmetto MUE pages, see docs coding-rules 5.3): 1 = claim-line edit,
2 = absolute date-of-service edit (policy), 3 = date-of-service edit (clinical, appealable).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .files import SourceFile, code_cell, contains, data_rows, read_table, source_of

_REQUIRED = {
    "code": contains("hcpcs", "cptcode"),
    "value": contains("muevalue", "mue value", "unitsofservice"),
    "mai": contains("adjudicationindicator", "mai"),
}
_OPTIONAL = {"rationale": contains("rationale")}
_MAI_RE = re.compile(r"^\s*([123])(?:\.0)?(?:\D|$)")


@dataclass(frozen=True)
class MueLimit:
    code: str
    value: int  # most units one practitioner reports for the code on one date of service
    mai: str  # "1" | "2" | "3"
    rationale: str


class MueTable:
    """Practitioner MUE values by code."""

    def __init__(self, limits: dict[str, MueLimit], source: SourceFile | None = None) -> None:
        self._limits = dict(limits)
        self.source = source

    @classmethod
    def load(cls, path: str | Path) -> MueTable:
        table = read_table(path, _REQUIRED, _OPTIONAL)
        limits: dict[str, MueLimit] = {}
        rejected: list[int] = []
        for row in data_rows(table, "code"):
            code = code_cell(table.value(row, "code"))
            value = table.value(row, "value").removesuffix(".0")
            mai = _MAI_RE.match(table.value(row, "mai"))
            if code is None or not value.isdigit() or mai is None:
                rejected.append(row.line)
                continue
            limits[code] = MueLimit(code, int(value), mai.group(1), " ".join(table.value(row, "rationale").split()))
        return cls(limits, source_of(table, "mue", len(limits), rejected))

    @classmethod
    def empty(cls) -> MueTable:
        return cls({})

    def limit(self, code: str) -> MueLimit | None:
        return self._limits.get(code.strip().upper())

    def __len__(self) -> int:
        return len(self._limits)
