"""Estimated Medicare payment difference of a finding, from a real PPRRVU file's RVUs.

Estimate = (non-facility total RVUs x conversion factor) of the recommended code, less that of the
codes it replaces or drops. Only with a real MPFS file loaded (setting `mpfs_rvu_path`): the
bundled synthetic file's RVUs are placeholders, so without a real file the column stays empty.
No geographic adjustment (GPCI): this is an order of magnitude for triage, not a claim amount.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..coding.cms import CmsTables
from ..coding.cms.files import CmsFileError, code_cell, contains, data_rows, exact, read_table
from ..coding.findings import Finding, FindingKind
from ..coding.visit import PumpVisit
from ..config import Settings

_COLUMNS = {
    "code": exact("HCPCS", "HCPCS CODE", "CPT/HCPCS", "HCPCS/CPT"),
    "modifier": exact("MOD", "MODIFIER"),
    "non_facility_total": contains("NON-FACILITY TOTAL", "NON FACILITY TOTAL", "NONFACILITY TOTAL"),
    "conversion_factor": contains("CONV FACTOR", "CONVERSION FACTOR"),
}


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").replace("$", ""))
    except ValueError:
        return None


@dataclass(frozen=True)
class FeeSchedule:
    """Dollars per code (global row, no modifier) and the file release they come from."""

    amounts: Mapping[str, float]
    release: str

    @classmethod
    def load(cls, path: str | Path, release: str = "unknown") -> FeeSchedule:
        table = read_table(path, _COLUMNS)
        amounts: dict[str, float] = {}
        for row in data_rows(table, "code"):
            code = code_cell(table.value(row, "code"))
            if code is None or table.value(row, "modifier"):
                continue
            rvu, factor = _number(table.value(row, "non_facility_total")), _number(table.value(row, "conversion_factor"))
            if rvu is not None and factor:
                amounts[code] = round(rvu * factor, 2)
        return cls(amounts, release)

    @classmethod
    def for_settings(cls, settings: Settings, cms: CmsTables) -> FeeSchedule | None:
        source = cms.mpfs.source
        if not settings.mpfs_rvu_path or source is None or source.synthetic:
            return None
        try:
            return cls.load(settings.mpfs_rvu_path, source.release)
        except CmsFileError:
            return None  # the indicators loaded, but the file has no RVU totals: no estimate

    def amount(self, code: str | None) -> float | None:
        return self.amounts.get(code) if code else None

    def difference(self, finding: Finding, visit: PumpVisit) -> float | None:
        """Recommended minus billed, for findings that change which codes are billed."""
        if finding.kind not in (FindingKind.RECOMMENDED_CODE, FindingKind.REPLACE_CODE, FindingKind.DROP_CODE):
            return None
        if finding.code and finding.code in finding.replaces:
            return None  # same code, other units or modifiers: not a fee-schedule question
        amounts = [self.amount(c) for c in finding.replaces]
        removed = [a for a in amounts if a is not None]
        if len(removed) != len(amounts):
            return None
        gained = 0.0
        if finding.kind != FindingKind.DROP_CODE:
            amount = self.amount(finding.code)
            if amount is None:
                return None
            gained = amount * (finding.units or 1)
        lost = sum(a * _units(visit, c) for a, c in zip(removed, finding.replaces))
        return round(gained - lost, 2)


def _units(visit: PumpVisit, code: str) -> int:
    chosen = visit.code(code)
    return chosen.units if chosen is not None else 1
