"""Audit benchmark: ``python -m bench.audit [--quick] [--sizes 1000:100000,...]``.

1. Batch path, in process on one core: visits/s of the whole path (raw JSON -> gate -> R4 parse
   -> facts -> rules -> rows), of the engine alone (facts and rules on read-in resources), and the
   baseline in the same run: the same sample visits through `invoke` (hook path, cards included).
2. End to end: `pumpcds audit` as a subprocess on synthetic exports of 3 sizes (pump visits among
   unrelated resources), wall time, peak RSS of the largest process, with a DuckDB scan of the
   same files as the baseline, and a least-squares line for linearity.
The results replace the section between the bench markers in docs/audit.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .export import generate
from .timing import linear_fit

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "audit.md"
START, END = "<!-- bench:audit:start -->", "<!-- bench:audit:end -->"


def _groups(export: Path, work: Path) -> list[dict[str, Any]]:
    from service.audit.duck import DuckSelection
    from service.coding.vocabulary import Vocabulary

    sel = DuckSelection(work)
    sel.load(sorted(export.glob("*.ndjson*")))
    sel.group(Vocabulary.load())
    groups = [g for chunk in sel.stream() for g in chunk]
    sel.close()
    return groups


def batch_path(tmp: Path, visits: int = 800) -> dict[str, float]:
    from service.audit import batch
    from service.cdshooks.invoke import invoke
    from service.cdshooks.services import ENCOUNTER_DISCHARGE
    from service.config import load_settings
    from service.fhir.parse import parse_many
    from service.fhir.resources import VisitResources
    from service.runtime import Runtime

    generate(tmp / "small", visits, 0)
    groups = _groups(tmp / "small", tmp / "work")
    settings = load_settings(environ={}, database_url="sqlite://")
    evaluator = batch.Evaluator.load(settings)
    batch.run_batch(evaluator, groups[:50])
    t = time.perf_counter()
    batch.run_batch(evaluator, groups)
    whole = len(groups) / (time.perf_counter() - t)

    parsed = []
    for g in groups:
        vr = VisitResources(context={"patientId": g["patient"], "encounterId": g["encounter"]} if g["encounter"] else {"patientId": g["patient"]}, hook=ENCOUNTER_DISCHARGE)
        models, issues = parse_many([json.loads(d) for d in g["docs"] + list(g["context"] or [])], "export", g["encounter"])
        vr.extend(models)
        vr.issues.extend(issues)
        parsed.append(vr)
    t = time.perf_counter()
    for vr in parsed:
        evaluator.engine.assess(vr)
    engine_only = len(parsed) / (time.perf_counter() - t)

    runtime = Runtime.build(settings, with_store=False)
    requests = []
    for path in sorted((ROOT / "fhir_samples" / "requests").glob("*.json")):
        expected = json.loads((ROOT / "fhir_samples" / "expected" / path.name).read_text())
        if not expected.get("fhir_server_dir") and not expected.get("settings"):
            requests.append((expected["service"], json.loads(path.read_text())))
    done, t = 0, time.perf_counter()
    while time.perf_counter() - t < 3.0:
        for service, body in requests:
            invoke(runtime, service, body)
            done += 1
    baseline = done / (time.perf_counter() - t)
    return {"visits": len(groups), "batch_per_s": whole, "engine_per_s": engine_only, "invoke_per_s": baseline}


def _scan_seconds(export: Path) -> float:
    import duckdb

    files = [str(p) for p in sorted(export.glob("*.ndjson*"))]
    t = time.perf_counter()
    duckdb.connect().execute("SELECT count(*) FROM read_ndjson_objects(?, ignore_errors = true)", [files]).fetchone()
    return time.perf_counter() - t


def end_to_end(tmp: Path, visits: int, noise: int) -> dict[str, Any]:
    export = tmp / f"export-{visits}"
    t = time.perf_counter()
    generate(export, visits, noise)
    generated = time.perf_counter() - t
    size = sum(p.stat().st_size for p in export.iterdir())
    scan = _scan_seconds(export)
    out = tmp / f"out-{visits}"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "service.cli", "audit", str(export), "--out", str(out), "--quiet"],
                   check=True, cwd=ROOT, env={**os.environ, "DATABASE_URL": "sqlite://"})
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    run = json.loads((out / "run.json").read_text())
    shutil.rmtree(export, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return {"visits": visits, "noise": noise, "resources": run["counts"]["resources"], "mb": size / 1e6,
            "pump_visits": run["counts"]["pump_visits"], "findings": run["counts"]["findings"],
            "wall_s": wall, "select_s": run["timings_s"]["select"], "evaluate_s": run["timings_s"]["evaluate"],
            "scan_s": scan, "generate_s": generated, "peak_rss_mb": max(peak, before) / 1024,
            "main_rss_mb": run["peak_rss_mb"]["main"], "worker_rss_mb": run["peak_rss_mb"]["workers"]}


def render(bp: dict[str, float], e2e: list[dict[str, Any]], quick: bool) -> str:
    cores = os.cpu_count() or 1
    load = os.getloadavg()
    lines = [START, "",
             f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, {cores} cores, "
             f"Python {platform.python_version()}, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
             f"(other work was running on the machine){' — quick run, not the record' if quick else ''}.", "",
             "**Batch path, one core, in process** (synthetic visits cloned from the samples):", "",
             "| path | visits/s | vs `invoke` (baseline, same run) |", "|---|---:|---:|",
             f"| `invoke` (hook path with cards, sample requests) | {bp['invoke_per_s']:,.0f} | 1.0x |",
             f"| audit batch path (raw JSON -> gate -> read in -> facts -> rules -> rows) | {bp['batch_per_s']:,.0f} | {bp['batch_per_s'] / bp['invoke_per_s']:.1f}x |",
             f"| engine alone (facts and rules on read-in resources) | {bp['engine_per_s']:,.0f} | {bp['engine_per_s'] / bp['invoke_per_s']:.1f}x |",
             "", "**End to end, `pumpcds audit` (DuckDB, process pool on all cores)**:", "",
             "| pump visits | unrelated | resources | NDJSON MB | wall s | select s | evaluate s | DuckDB scan s (baseline) | wall / scan | RSS MB main (DuckDB) | RSS MB largest worker | findings |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in e2e:
        lines.append(f"| {r['pump_visits']:,} | {r['noise']:,} | {r['resources']:,} | {r['mb']:.0f} | {r['wall_s']:.1f} | "
                     f"{r['select_s']:.1f} | {r['evaluate_s']:.1f} | {r['scan_s']:.2f} | {r['wall_s'] / r['scan_s']:.0f}x | "
                     f"{r['main_rss_mb']:.0f} | {r['worker_rss_mb'] or 0:.0f} | {r['findings']:,} |")
    if len(e2e) >= 2:
        slope, intercept, r2 = linear_fit([float(r["resources"]) for r in e2e], [r["wall_s"] for r in e2e])
        lines += ["", f"Linearity: wall = {intercept:.1f} s + {slope * 1e6:.1f} s per million resources (r² = {r2:.3f})."]
    lines += ["", END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default="", help="visits:noise,... (default 1000:100000,3000:300000,10000:1000000)")
    parser.add_argument("--no-doc", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    sizes = args.sizes or ("200:20000,400:40000,800:80000" if args.quick else "1000:100000,3000:300000,10000:1000000")
    pairs = [tuple(int(x) for x in s.split(":")) for s in sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="pumpcds-bench-audit-") as tmp:
        print("batch path ...", file=sys.stderr)
        bp = batch_path(Path(tmp), 200 if args.quick else 800)
        e2e = []
        for visits, noise in pairs:
            print(f"end to end: {visits} visits among {noise} unrelated resources ...", file=sys.stderr)
            e2e.append(end_to_end(Path(tmp), visits, noise))
            print(json.dumps(e2e[-1]), file=sys.stderr)
    text = render(bp, e2e, args.quick)
    print(text)
    if not args.no_doc and DOC.exists():
        doc = DOC.read_text()
        if START in doc and END in doc:
            DOC.write_text(doc[: doc.index(START)] + text + doc[doc.index(END) + len(END):])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
