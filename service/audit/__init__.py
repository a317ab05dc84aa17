"""Retrospective audit: past pump visits from a FHIR export, checked with the hooks' engine and rules.

inputs (files -> NDJSON) -> select (DuckDB or Spark: resources grouped into visits, pump visits
picked) -> batch (facts and rules per visit, no HTTP, no cards) -> outputs (Parquet, CSV,
run.json, report.html). Patient data goes only to the output folder, never to logs.
"""
