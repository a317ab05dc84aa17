"""The `pumpcds audit` subcommand: arguments, the run, and the summary printed at the end."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path


def _size(text: str) -> str:
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", text.strip(), re.IGNORECASE):
        raise argparse.ArgumentTypeError(f"expected a size such as 512MB or 2GB, got {text!r}")
    return text.strip()


def add_parser(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser(
        "audit",
        help="check every past pump visit in a FHIR export (NDJSON folders, Bundles) and write findings and a report",
    )
    audit.add_argument("inputs", nargs="*", metavar="INPUT", help="NDJSON folder or file (.ndjson, .ndjson.gz) or Bundle JSON file")
    audit.add_argument("--out", required=True, help="output folder (gets findings.parquet/.csv, visits.parquet, report.html, run.json)")
    audit.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb", help="selection engine (default: embedded DuckDB)")
    audit.add_argument("--workers", type=int, default=0, help="evaluation processes (default: one per core)")
    audit.add_argument("--fhir-export", metavar="FHIR_BASE_URL",
                       help="first run $export on this FHIR server (Bulk Data Access) and audit what it gives")
    audit.add_argument("--export-level", default="system",
                       help="system (default), patient, or group:<id> for Group/<id>/$export")
    audit.add_argument("--export-since", help="only resources changed since this instant (_since)")
    audit.add_argument("--bearer-token-file", help="file holding the bearer token for the FHIR server "
                       "(default: the PUMPCDS_BULK_TOKEN environment variable)")
    audit.add_argument("--memory-limit", default="1GB", type=_size, help="DuckDB memory cap; it spills to DIR/.work beyond it (default 1GB)")
    audit.add_argument("--quiet", action="store_true", help="no progress display and no summary")
    audit.add_argument("--compare", metavar="PREVIOUS_DIR", help="show what changed against an earlier audit's output folder")
    audit.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import load_settings
    from .inputs import InputError
    from .progress import AuditProgress
    from .run import AuditOptions, audit
    from .summary import print_summary

    if not args.inputs and not args.fhir_export:
        print("audit: give at least one INPUT (an NDJSON folder or file, or a Bundle JSON file) or --fhir-export URL",
              file=sys.stderr)
        return 2
    if args.compare and not (Path(args.compare) / "findings.parquet").is_file():
        print(f"audit: --compare {args.compare}: no findings.parquet there (not an audit output folder)", file=sys.stderr)
        return 2
    inputs = list(args.inputs)
    if args.fhir_export:
        from .bulk import BulkClient, BulkExportError, read_token

        target = Path(args.out) / "export"  # the downloaded export is patient data: it stays in DIR
        try:
            client = BulkClient(args.fhir_export, read_token(args.bearer_token_file))
            if not args.quiet:
                print(f"audit: $export on {args.fhir_export} ...", file=sys.stderr)
            got = client.export(target, args.export_level, since=args.export_since)
        except BulkExportError as exc:
            print(f"audit: {exc}", file=sys.stderr)
            return 2
        if not args.quiet:
            print(f"audit: {len(got.files)} export files downloaded to {target} after {got.polls} status polls",
                  file=sys.stderr)
        inputs.append(str(target))
    options = AuditOptions(inputs, Path(args.out), engine=args.engine,
                           workers=max(0, args.workers), memory_limit=args.memory_limit)
    progress = AuditProgress(quiet=args.quiet)
    try:
        with progress:
            result = audit(options, load_settings(), progress)
    except InputError as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print_summary(result, progress.console, Path(args.compare) if args.compare else None)
    return 0
