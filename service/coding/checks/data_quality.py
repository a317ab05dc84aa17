"""Input that could not be used as sent, in a clinician's words, on one card."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..findings import Evidence, FindingKind
from .base import Run, finding
from .registry import Stage, check

if TYPE_CHECKING:
    from ..rulebook import Rule


@check("data-quality", stage=Stage.LINES)
def data_quality(run: Run, rule: Rule) -> None:
    """Only on a pump visit (activity, drug or a pump code); on anything else, such as a pump
    patient's other orders, it is noise. The technical detail (resource ids, validator messages)
    stays in `input_problems` for the logs."""
    v = run.visit
    if not v.unreadable:
        return
    pump_codes = run.rs.pump_codes
    if v.activity_source != "none" or v.drug is not None or any(c.code in pump_codes for c in v.codes):
        evidence = [Evidence("", f"{what[:1].upper() + what[1:]}: {why}") for what, why in v.unreadable]
        run.findings.append(finding(run, rule, FindingKind.DATA_QUALITY, evidence=evidence))
