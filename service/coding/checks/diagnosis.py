"""Diagnosis codes that became category headers (not billable) on a date."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..codetable import ICD10_SYSTEM
from ..findings import FindingKind
from .base import Run, finding
from .registry import TEXT_MAP, Param, Stage, check

if TYPE_CHECKING:
    from ..rulebook import Rule


@check("diagnosis-header", stage=Stage.LINES, params={
    "headers": Param(TEXT_MAP, doc="ICD-10-CM header -> the specific codes to use instead"),
})
def diagnosis_header(run: Run, rule: Rule) -> None:
    """The first header diagnosis on the visit, with the specific codes to choose from."""
    headers = {str(k).upper(): str(v) for k, v in rule.params["headers"].items()}
    for code, _ in dict.fromkeys(run.visit.diagnoses):
        if code.upper() in headers:
            run.findings.append(finding(run, rule, FindingKind.REPLACE_CODE, code_system=ICD10_SYSTEM,
                                        replaces=[code.upper()], evidence=run.visit.evidence_for(f"diagnosis:{code}"),
                                        params={"reason": headers[code.upper()]}))
            return
