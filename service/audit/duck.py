"""Embedded engine: DuckDB reads the NDJSON (gz too), groups resources into visits and picks the
candidates out of core (spilling to the run's work folder), then streams one row per candidate
visit in Arrow batches, so memory does not grow with the number of visits."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from ..coding.vocabulary import Vocabulary
from . import selection as sel

MAX_OBJECT_BYTES = 64 * 1024 * 1024


def _list(items: tuple[str, ...]) -> str:
    return ", ".join(f"'{t}'" for t in items)


class DuckSelection:
    """One DuckDB database per run, in the work folder; `close()` removes nothing (the caller does)."""

    def __init__(self, work: Path, threads: int | None = None, memory_limit: str = "2GB") -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(work / "audit.duckdb"))
        self.con.execute(f"SET temp_directory = {sel.sql_text(work / 'spill')}")
        self.con.execute(f"SET memory_limit = {sel.sql_text(memory_limit)}")
        self.con.execute(f"SET threads = {int(threads or os.cpu_count() or 1)}")
        self.con.execute("SET preserve_insertion_order = false")
        self.counts: dict[str, Any] = {}
        self._files: list[str] = []

    def load(self, files: list[Path]) -> None:
        """Read every line once: keep the text and pull out, in one JSON parse, what grouping needs."""
        self._files = [str(f) for f in files]

    def group(self, vocabulary: Vocabulary, prefilter: bool = True) -> None:
        c = self.con
        paths = ["$.resourceType", "$.id", *sel.PATIENT_PATHS, *sel.ENCOUNTER_PATHS, *sel.DATE_PATHS]
        at = {p: i + 1 for i, p in enumerate(paths)}

        def first(group: tuple[str, ...]) -> str:
            return "coalesce(" + ", ".join(f"x[{at[p]}]" for p in group) + ")"

        source = ("read_ndjson_objects(?, ignore_errors = true, maximum_object_size = ?)" if self._files
                  else "(SELECT NULL::JSON AS json WHERE false)")
        hit = "regexp_matches(doc, ?)" if prefilter else "true"
        params: list[Any] = [sel.prefilter_regex(vocabulary)] if prefilter else []
        c.execute(f"""
            CREATE TABLE res AS SELECT doc, x[1] AS rtype, x[2] AS id,
                regexp_extract({first(sel.PATIENT_PATHS)}, '{sel.LAST_SEGMENT}', 1) AS patient,
                CASE WHEN x[1] = 'Encounter' THEN x[2]
                     ELSE nullif(regexp_extract({first(sel.ENCOUNTER_PATHS)}, '{sel.ENCOUNTER_REF}', 1), '') END AS enc,
                substr({first(sel.DATE_PATHS)}, 1, 10) AS day,
                CASE WHEN x[1] IN ({_list(sel.VISIT_TYPES)}) THEN {hit} ELSE false END AS hit
            FROM (SELECT json::VARCHAR AS doc, json_extract_string(json, {paths!r}) AS x FROM {source})""",
            params + ([self._files, MAX_OBJECT_BYTES] if self._files else []))
        c.execute(f"CREATE VIEW scoped AS SELECT rowid, rtype, id, patient, enc, day, hit FROM res WHERE rtype IN ({_list(sel.VISIT_TYPES)})")
        c.execute("""
            CREATE TABLE enc_day AS SELECT patient, day, min(id) AS enc FROM scoped
            WHERE rtype = 'Encounter' AND patient <> '' AND day IS NOT NULL GROUP BY patient, day HAVING count(*) = 1""")
        c.execute("""
            CREATE TABLE grouped AS SELECT s.rowid AS rid, s.rtype, s.patient, s.day, s.hit, coalesce(s.enc, e.enc) AS encounter,
                CASE WHEN coalesce(s.enc, e.enc) IS NOT NULL THEN 'E|' || coalesce(s.enc, e.enc)
                     ELSE 'P|' || s.patient || '|' || s.day END AS visit
            FROM scoped s LEFT JOIN enc_day e ON s.enc IS NULL AND s.patient = e.patient AND s.day = e.day
            WHERE s.enc IS NOT NULL OR (s.patient <> '' AND s.day IS NOT NULL)""")
        c.execute("CREATE TABLE candidates AS SELECT DISTINCT visit FROM grouped WHERE hit")
        c.execute("""
            CREATE TABLE visits AS SELECT g.visit, any_value(g.encounter) AS encounter,
                coalesce(max(CASE WHEN g.rtype = 'Encounter' THEN nullif(g.patient, '') END), max(nullif(g.patient, ''))) AS patient,
                coalesce(max(CASE WHEN g.rtype = 'Encounter' THEN g.day END), max(g.day)) AS day,
                list(r.doc) AS docs
            FROM grouped g SEMI JOIN candidates USING (visit) JOIN res r ON r.rowid = g.rid GROUP BY g.visit""")
        c.execute("""
            CREATE TABLE patient_ctx AS SELECT patient, list(doc) AS docs FROM res
            WHERE (rtype = 'Device' OR (rtype = 'Coverage' AND doc->>'$.status' = 'active'))
              AND patient IN (SELECT patient FROM visits) GROUP BY patient""")
        c.execute(f"""
            CREATE TABLE directory AS
                SELECT rtype || '/' || id AS key, doc FROM res WHERE rtype IN ({_list(sel.DIRECTORY_TYPES)}) AND id IS NOT NULL
                UNION ALL
                SELECT 'Practitioner/' || regexp_extract(doc->>'$.practitioner.reference', '{sel.LAST_SEGMENT}', 1), doc
                FROM res WHERE rtype = 'PractitionerRole'
                UNION ALL
                SELECT 'PractitionerRole/' || r.id, p.doc FROM res r JOIN res p
                  ON r.rtype = 'PractitionerRole' AND p.rtype = 'Practitioner'
                 AND p.id = regexp_extract(r.doc->>'$.practitioner.reference', '{sel.LAST_SEGMENT}', 1)""")
        c.execute(f"""
            CREATE TABLE refs AS SELECT DISTINCT v.visit, regexp_extract(r, '{sel.TYPED_REF}', 1) AS key
            FROM visits v, unnest(v.docs) AS d(doc), unnest(regexp_extract_all(d.doc, '{sel.REFERENCE_TEXT}', 1)) AS t(r)""")
        c.execute("""
            CREATE TABLE visit_ctx AS SELECT refs.visit, list(DISTINCT d.doc) AS docs
            FROM refs JOIN directory d ON d.key = refs.key GROUP BY refs.visit""")
        self.counts = dict(zip(
            ("resources", "unreadable_lines", "visit_scoped", "unplaced", "visits", "candidates"),
            c.execute("""SELECT (SELECT count(*) FROM res), (SELECT count(*) FROM res WHERE rtype IS NULL),
                (SELECT count(*) FROM scoped), (SELECT count(*) FROM scoped) - (SELECT count(*) FROM grouped),
                (SELECT count(DISTINCT visit) FROM grouped), (SELECT count(*) FROM candidates)""").fetchone() or (),
        ))
        self.counts["by_type"] = dict(c.execute(
            "SELECT coalesce(rtype, '(unreadable)'), count(*) FROM res GROUP BY 1 ORDER BY 2 DESC").fetchall())

    def stream(self, batch_rows: int = 256) -> Iterator[list[dict[str, Any]]]:
        """Candidate visits in batches: visit, encounter, patient, day, docs (the visit's own
        resources) and context (patient and referenced resources), all resource text as sent."""
        reader = self.con.sql("""
            SELECT v.visit, v.encounter, v.patient, v.day, v.docs,
                   list_concat(coalesce(p.docs, []), coalesce(x.docs, [])) AS context
            FROM visits v LEFT JOIN patient_ctx p ON p.patient = v.patient LEFT JOIN visit_ctx x ON x.visit = v.visit
            ORDER BY v.visit""").to_arrow_reader(batch_rows)
        for batch in reader:
            yield batch.to_pylist()

    def close(self) -> None:
        self.con.close()
