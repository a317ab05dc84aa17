"""Spark engine (`--engine spark`, optional extra `spark`): the same grouping and selection as the
DuckDB engine in Spark SQL, and the hooks' engine in a `mapInArrow` stage on the executors, so the
job scales past one machine. Without a master from spark-submit it runs in local mode on all cores.

mapInArrow rather than mapInPandas: the batch path works on rows of strings, and Arrow batches
reach it without a detour through DataFrames of Python objects.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..coding.vocabulary import Vocabulary
from ..config import Settings
from . import selection as sel

_EVALUATOR: Any = None


def _list(items: tuple[str, ...]) -> str:
    return ", ".join(f"'{t}'" for t in items)


def _first(paths: tuple[str, ...]) -> str:
    return "coalesce(" + ", ".join(f"get_json_object(doc, '{p}')" for p in paths) + ")"


def session(work: Path) -> Any:
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (SparkSession.builder.appName("pumpcds-audit")
               .config("spark.sql.parser.escapedStringLiterals", "true")  # regexes as written, as in DuckDB
               .config("spark.sql.session.timeZone", "UTC").config("spark.ui.showConsoleProgress", "false"))
    if not SparkConf().contains("spark.master"):  # not under spark-submit: local mode, loopback only
        builder = (builder.master("local[*]").config("spark.ui.enabled", "false")
                   .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
                   .config("spark.local.dir", str(work / "spark")).config("spark.sql.shuffle.partitions", "2"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


class SparkSelection:
    def __init__(self, work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.spark = session(work)
        self.counts: dict[str, Any] = {}
        self._files: list[str] = []

    def load(self, files: list[Path]) -> None:
        self._files = [str(f) for f in files]

    def group(self, vocabulary: Vocabulary, prefilter: bool = True) -> None:
        s = self.spark
        if self._files:
            s.read.text(self._files).where("trim(value) <> ''").selectExpr("value AS doc").createOrReplaceTempView("lines")
        else:
            s.sql("SELECT CAST(NULL AS STRING) AS doc WHERE false").createOrReplaceTempView("lines")
        hit = f"doc RLIKE '{sel.prefilter_regex(vocabulary)}'" if prefilter else "true"
        s.sql(f"""
            SELECT doc, rtype, id,
                regexp_extract(coalesce({_first(sel.PATIENT_PATHS)}, ''), '{sel.LAST_SEGMENT}', 1) AS patient,
                CASE WHEN rtype = 'Encounter' THEN id
                     ELSE nullif(regexp_extract(coalesce({_first(sel.ENCOUNTER_PATHS)}, ''), '{sel.ENCOUNTER_REF}', 1), '') END AS enc,
                substr({_first(sel.DATE_PATHS)}, 1, 10) AS day,
                CASE WHEN rtype IN ({_list(sel.VISIT_TYPES)}) THEN {hit} ELSE false END AS hit
            FROM (SELECT doc, get_json_object(doc, '$.resourceType') AS rtype, get_json_object(doc, '$.id') AS id FROM lines)
        """).cache().createOrReplaceTempView("res")
        s.sql(f"SELECT * FROM res WHERE rtype IN ({_list(sel.VISIT_TYPES)})").createOrReplaceTempView("scoped")
        s.sql("""SELECT patient, day, min(id) AS enc FROM scoped
                 WHERE rtype = 'Encounter' AND patient <> '' AND day IS NOT NULL GROUP BY patient, day HAVING count(*) = 1
              """).createOrReplaceTempView("enc_day")
        s.sql("""
            SELECT s.rtype, s.doc, s.patient, s.day, s.hit, coalesce(s.enc, e.enc) AS encounter,
                CASE WHEN coalesce(s.enc, e.enc) IS NOT NULL THEN concat('E|', coalesce(s.enc, e.enc))
                     ELSE concat('P|', s.patient, '|', s.day) END AS visit
            FROM scoped s LEFT JOIN enc_day e ON s.enc IS NULL AND s.patient = e.patient AND s.day = e.day
            WHERE s.enc IS NOT NULL OR (s.patient <> '' AND s.day IS NOT NULL)""").cache().createOrReplaceTempView("grouped")
        s.sql("SELECT DISTINCT visit FROM grouped WHERE hit").createOrReplaceTempView("candidates")
        s.sql("""
            SELECT g.visit, first(g.encounter, true) AS encounter,
                coalesce(max(CASE WHEN g.rtype = 'Encounter' THEN nullif(g.patient, '') END), max(nullif(g.patient, ''))) AS patient,
                coalesce(max(CASE WHEN g.rtype = 'Encounter' THEN g.day END), max(g.day)) AS day,
                collect_list(g.doc) AS docs
            FROM grouped g LEFT SEMI JOIN candidates c ON g.visit = c.visit GROUP BY g.visit""").cache().createOrReplaceTempView("visits")
        s.sql("""
            SELECT patient, collect_list(doc) AS docs FROM res
            WHERE (rtype = 'Device' OR (rtype = 'Coverage' AND get_json_object(doc, '$.status') = 'active'))
              AND patient IN (SELECT patient FROM visits) GROUP BY patient""").createOrReplaceTempView("patient_ctx")
        s.sql(f"""
            SELECT concat(rtype, '/', id) AS key, doc FROM res WHERE rtype IN ({_list(sel.DIRECTORY_TYPES)}) AND id IS NOT NULL
            UNION ALL
            SELECT concat('Practitioner/', regexp_extract(coalesce(get_json_object(doc, '$.practitioner.reference'), ''), '{sel.LAST_SEGMENT}', 1)), doc
            FROM res WHERE rtype = 'PractitionerRole'
            UNION ALL
            SELECT concat('PractitionerRole/', r.id), p.doc FROM res r JOIN res p
              ON r.rtype = 'PractitionerRole' AND p.rtype = 'Practitioner'
             AND p.id = regexp_extract(coalesce(get_json_object(r.doc, '$.practitioner.reference'), ''), '{sel.LAST_SEGMENT}', 1)
        """).createOrReplaceTempView("directory")
        s.sql(f"""
            SELECT DISTINCT visit, regexp_extract(r, '{sel.TYPED_REF}', 1) AS key FROM (
                SELECT v.visit, explode(regexp_extract_all(d, '{sel.REFERENCE_TEXT}', 1)) AS r
                FROM visits v LATERAL VIEW explode(v.docs) t AS d)""").createOrReplaceTempView("refs")
        s.sql("""SELECT refs.visit, collect_set(d.doc) AS docs FROM refs JOIN directory d ON d.key = refs.key
                 GROUP BY refs.visit""").createOrReplaceTempView("visit_ctx")
        # two jobs for every count (each Spark action costs seconds of scheduling, whatever the data)
        by_type = {r[0]: int(r[1]) for r in s.sql("SELECT rtype, count(*) FROM res GROUP BY rtype").collect()}
        placed, visits, candidates = s.sql(
            "SELECT count(*), count(DISTINCT visit), count(DISTINCT CASE WHEN hit THEN visit END) FROM grouped").first()
        scoped = sum(n for t, n in by_type.items() if t in sel.VISIT_TYPES)
        self.counts = {
            "resources": sum(by_type.values()), "unreadable_lines": by_type.get(None, 0), "visit_scoped": scoped,
            "unplaced": scoped - int(placed), "visits": int(visits), "candidates": int(candidates),
            "by_type": dict(sorted(((t or "(unreadable)", n) for t, n in by_type.items()), key=lambda kv: -kv[1])),
        }

    def _final(self) -> Any:
        return self.spark.sql("""
            SELECT v.visit, v.encounter, v.patient, v.day, v.docs,
                   concat(coalesce(p.docs, array()), coalesce(x.docs, array())) AS context
            FROM visits v LEFT JOIN patient_ctx p ON p.patient = v.patient LEFT JOIN visit_ctx x ON x.visit = v.visit""")

    def stream(self, batch_rows: int = 256) -> Iterator[list[dict[str, Any]]]:
        """Candidate visits to the driver (for comparing engines; `evaluated` is the Spark path)."""
        chunk: list[dict[str, Any]] = []
        for row in self._final().orderBy("visit").toLocalIterator():
            chunk.append(row.asDict())
            if len(chunk) >= batch_rows:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def evaluated(self, settings: Settings, batch_rows: int = 256) -> Iterator[tuple[int, list[dict[str, Any]], list[dict[str, Any]]]]:
        """Facts and rules on the executors (mapInArrow); rows come back to the driver for writing."""
        def run(batches: Iterator[Any]) -> Iterator[Any]:
            import pyarrow as pa

            from . import batch as batch_path

            global _EVALUATOR
            if _EVALUATOR is None:
                _EVALUATOR = batch_path.Evaluator.load(settings)
            for b in batches:
                groups = b.to_pylist()
                for i in range(0, len(groups), batch_rows):
                    looked, visits, findings = batch_path.run_batch(_EVALUATOR, groups[i:i + batch_rows])
                    yield pa.RecordBatch.from_pylist([{
                        "looked": looked, "visits": json.dumps(visits, default=str), "findings": json.dumps(findings, default=str),
                    }], schema=pa.schema([("looked", pa.int64()), ("visits", pa.string()), ("findings", pa.string())]))

        out = self._final().mapInArrow(run, "looked long, visits string, findings string")
        for row in out.toLocalIterator():
            yield int(row.looked), _dated(json.loads(row.visits)), _dated(json.loads(row.findings))

    def close(self) -> None:
        self.spark.catalog.clearCache()


def _dated(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        if isinstance(r.get("date_of_service"), str):
            r["date_of_service"] = dt.date.fromisoformat(r["date_of_service"])
    return rows
