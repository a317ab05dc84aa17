"""findings.parquet, findings.csv and visits.parquet, written batch by batch (memory stays flat)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

_STR_LIST = pa.list_(pa.string())
_VISIT_KEYS = [
    pa.field("visit_id", pa.string()),
    pa.field("encounter_id", pa.string()),
    pa.field("patient_id", pa.string()),
    pa.field("date_of_service", pa.date32()),
    pa.field("performer_class", pa.string()),
    pa.field("billed_codes", _STR_LIST),
]
FINDINGS_SCHEMA = pa.schema([
    *_VISIT_KEYS,
    pa.field("recommended_code", pa.string()),
    pa.field("replaces", _STR_LIST),
    pa.field("modifiers", _STR_LIST),
    pa.field("units", pa.int32()),
    pa.field("kind", pa.string()),
    pa.field("rule_id", pa.string()),
    pa.field("rule_version", pa.string()),
    pa.field("rule_source", pa.string()),
    pa.field("severity", pa.string()),
    pa.field("missing_elements", _STR_LIST),
    pa.field("est_payment_difference", pa.float64()),
])
VISITS_SCHEMA = pa.schema([
    *_VISIT_KEYS,
    pa.field("pump_kind", pa.string()),
    pa.field("target", pa.string()),
    pa.field("activities", pa.string()),
    pa.field("billed_service", pa.string()),
    pa.field("expected_service", pa.string()),
    pa.field("findings", pa.int32()),
    pa.field("rule_ids", _STR_LIST),
    pa.field("missing_elements", _STR_LIST),
    pa.field("worst_severity", pa.string()),
    pa.field("clean", pa.bool_()),
    pa.field("est_payment_difference", pa.float64()),
])


def _flat(table: pa.Table) -> pa.Table:
    """Lists joined with '; ' so the CSV opens in a spreadsheet."""
    columns = []
    for column in table.columns:
        if pa.types.is_list(column.type):
            column = pa.array(["; ".join(v) if v else "" for v in column.to_pylist()], pa.string())
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


class Writers:
    """Open writers for one run; `write` takes the rows of one evaluated batch."""

    def __init__(self, out: Path) -> None:
        self.findings = pq.ParquetWriter(out / "findings.parquet", FINDINGS_SCHEMA)
        self.visits = pq.ParquetWriter(out / "visits.parquet", VISITS_SCHEMA)
        flat = _flat(FINDINGS_SCHEMA.empty_table()).schema
        self.csv = pacsv.CSVWriter(out / "findings.csv", flat)

    def write(self, visits: list[dict[str, Any]], findings: list[dict[str, Any]]) -> None:
        if visits:
            self.visits.write_table(pa.Table.from_pylist(visits, VISITS_SCHEMA))
        if findings:
            table = pa.Table.from_pylist(findings, FINDINGS_SCHEMA)
            self.findings.write_table(table)
            self.csv.write_table(_flat(table))

    def close(self) -> None:
        for w in (self.findings, self.visits, self.csv):
            w.close()
