"""`pumpcds audit`: inputs -> selection -> batch evaluation -> outputs, with counts and timings."""
from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Settings
from . import batch
from .inputs import InputError, gather
from .outputs import Writers
from .progress import AuditProgress

if TYPE_CHECKING:
    from ..coding.engine import CodingEngine

log = logging.getLogger("pumpcds.audit")
WORK_DIR = ".work"


@dataclass
class AuditOptions:
    inputs: list[str]
    out: Path
    engine: str = "duckdb"
    workers: int = 0  # 0: one per core; 1: in this process
    batch_rows: int = 256
    prefilter: bool = True
    keep_work: bool = False
    memory_limit: str = "1GB"  # DuckDB's cap; past it, it spills to the work folder


@dataclass
class AuditResult:
    out: Path
    run: dict[str, Any]
    counts: Counter = field(default_factory=Counter)


def _select(options: AuditOptions, settings: Settings, files: list[Path], work: Path, vocabulary: Any) -> tuple[Iterator[list[dict[str, Any]]], dict[str, Any], Any]:
    if options.engine == "spark":
        from .spark import SparkSelection

        selection: Any = SparkSelection(work)
    else:
        from .duck import DuckSelection

        selection = DuckSelection(work, memory_limit=options.memory_limit)
    selection.load(files)
    selection.group(vocabulary, prefilter=options.prefilter)
    return selection.stream(options.batch_rows), selection.counts, selection


def _evaluate(options: AuditOptions, settings: Settings, groups: Iterator[list[dict[str, Any]]],
              peaks: list[float]) -> Iterator[tuple[int, list, list]]:
    workers = options.workers or os.cpu_count() or 1

    def done(result: tuple[int, list, list, float]) -> tuple[int, list, list]:
        peaks.append(result[3])
        return result[:3]

    if workers == 1:
        evaluator = batch.Evaluator.load(settings)
        for chunk in groups:
            yield batch.run_batch(evaluator, chunk)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=batch.init_worker,
                             initargs=(settings,)) as pool:
        pending: deque[Future] = deque()
        for chunk in groups:
            pending.append(pool.submit(batch.evaluate_batch, chunk))
            while len(pending) >= 2 * workers:  # bounded: memory flat whatever the export's size
                yield done(pending.popleft().result())
        while pending:
            yield done(pending.popleft().result())


def versions(engine: CodingEngine) -> dict[str, Any]:
    cms = {}
    for name in ("ptp", "mue", "mpfs"):
        src = getattr(engine.rules.cms, name).source
        cms[name] = None if src is None else {"release": src.release, "synthetic": src.synthetic, "rows": src.rows}
    import yaml

    from ..coding.vocabulary import DATA

    vocab_version = yaml.safe_load((DATA / "vocabulary.yaml").read_text()).get("version")
    return {
        "rulebook": engine.rules.book.version,
        "rules": {r.id: r.version for r in engine.rules.book.rules},
        "vocabulary": str(vocab_version),
        "cms": cms,
    }


def audit(options: AuditOptions, settings: Settings, progress: AuditProgress | None = None) -> AuditResult:
    from ..coding.vocabulary import Vocabulary

    progress = progress or AuditProgress(quiet=True)
    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    work = out / WORK_DIR
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    counts: Counter = Counter()
    try:
        inputs = gather(list(options.inputs), work, progress.files)
        if inputs.remote and options.engine != "spark":
            raise InputError(f"{inputs.remote[0]}: storage URLs are read only with --engine spark")
        timings["inputs"] = time.perf_counter() - t0
        log.info("audit: %d input files (%d NDJSON to read), %d skipped", len(inputs.files), len(inputs.ndjson), len(inputs.problems))

        t = time.perf_counter()
        progress.say(f"reading and grouping resources ({options.engine}) ...")
        vocabulary = Vocabulary.load(settings.site_mapping_path)
        files: list[Any] = [*inputs.ndjson, *inputs.remote]
        groups, select_counts, selection = _select(options, settings, files, work, vocabulary)
        timings["select"] = time.perf_counter() - t
        progress.found(select_counts.get("visits", 0), select_counts.get("candidates", 0))
        log.info("audit: %s resources, %s visits, %s candidates", select_counts.get("resources"),
                 select_counts.get("visits"), select_counts.get("candidates"))

        t = time.perf_counter()
        writers = Writers(out)
        by_rule: Counter = Counter()
        worker_peaks: list[float] = []
        by_severity: Counter = Counter()
        try:
            evaluated = (selection.evaluated(settings, options.batch_rows) if options.engine == "spark"
                         else _evaluate(options, settings, groups, worker_peaks))
            for looked, visit_rows, finding_rows in evaluated:
                counts["evaluated"] += looked
                counts["pump_visits"] += len(visit_rows)
                counts["clean_visits"] += sum(1 for v in visit_rows if v["clean"])
                counts["findings"] += len(finding_rows)
                by_rule.update(f["rule_id"] for f in finding_rows)
                by_severity.update(f["severity"] for f in finding_rows)
                writers.write(visit_rows, finding_rows)
                progress.evaluated(counts["evaluated"], select_counts.get("candidates", 0), counts["pump_visits"],
                                   time.perf_counter() - t)
        finally:
            writers.close()
            selection.close()
        timings["evaluate"] = time.perf_counter() - t
    finally:
        if not options.keep_work:
            shutil.rmtree(work, ignore_errors=True)

    t = time.perf_counter()
    from ..coding.engine import CodingEngine

    engine = CodingEngine.load(settings)  # the rule and CMS versions the workers loaded, for run.json and the report
    run = {
        "tool": "pumpcds audit",
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "engine": options.engine,
        "workers": options.workers or os.cpu_count() or 1,
        "inputs": [{"path": str(f.path), "kind": f.kind, "bytes": f.bytes, "resources": f.resources} for f in inputs.files]
                  + [{"path": url, "kind": "ndjson (storage URL)", "bytes": None, "resources": None} for url in inputs.remote],
        "input_problems": inputs.problems,
        "counts": {
            "files": len(inputs.files),
            **{k: v for k, v in select_counts.items() if k != "by_type"},
            "evaluated": counts["evaluated"],
            "pump_visits": counts["pump_visits"],
            "clean_visits": counts["clean_visits"],
            "visits_with_findings": counts["pump_visits"] - counts["clean_visits"],
            "findings": counts["findings"],
            "findings_by_severity": dict(by_severity.most_common()),
            "findings_by_rule": dict(by_rule.most_common()),
            "resources_by_type": select_counts.get("by_type", {}),
        },
        "versions": versions(engine),
        "fee_schedule": bool(settings.mpfs_rvu_path),
        "timings_s": {},
        # largest resident set: this process (DuckDB's buffers, capped by --memory-limit) and the
        # largest evaluation worker (flat in the number of visits: bounded batches in flight)
        "peak_rss_mb": {
            "main": batch.peak_rss_mb() or round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "workers": max(worker_peaks, default=None),
        },
    }
    from .report import write_report

    write_report(out, run, engine.rules.book)
    timings["report"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    run["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    log.info("audit: %d pump visits, %d findings in %.1f s", counts["pump_visits"], counts["findings"], timings["total"])
    return AuditResult(out, run, counts)
