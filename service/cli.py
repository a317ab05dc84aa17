"""Command line: `pumpcds serve | evaluate | schemas | demo-fhir-server | demo | feedback-report | cms | audit`."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

from .config import ConfigError, load_settings


def _serve(args: argparse.Namespace) -> int:
    from .app import create_app
    from .store.engine import describe

    settings = load_settings()
    app = create_app(settings)
    # where the database is, never the URL itself (it may hold a password)
    print(f"pumpcds on http://{args.host}:{args.port}/cds-services (database: {describe(settings.database_url)})",
          file=sys.stderr)
    app.run(host=args.host, port=args.port, debug=False, threaded=True)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .cdshooks.invoke import invoke
    from .cdshooks.services import service_for_hook
    from .runtime import Runtime

    try:
        body = json.loads(Path(args.request).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"cannot read {args.request}: {exc}", file=sys.stderr)
        return 2
    settings = load_settings()
    if args.strict:  # every resource validated with the R4 models, as the tests compare
        settings = settings.with_overrides(fhir_validation="strict")
    runtime = Runtime.build(settings)
    service_id = args.service
    if not service_id:
        hook = body.get("hook") if isinstance(body, dict) else None
        service = service_for_hook(runtime.services, hook) if isinstance(hook, str) else None
        if service is None:
            print(f"no service for hook {hook!r}; name one with --service", file=sys.stderr)
            return 2
        service_id = service.id
    result = invoke(runtime, service_id, body)
    json.dump(result.body, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if result.status == 200 else 1


def _schemas(args: argparse.Namespace) -> int:
    from .cdshooks.validation import SCHEMA_NAMES, load_schema

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in SCHEMA_NAMES:
        (out / f"{name}.schema.json").write_text(json.dumps(load_schema(name), indent=2) + "\n")
        print(out / f"{name}.schema.json")
    return 0


def _demo_fhir_server(args: argparse.Namespace) -> int:
    from .devtools.bulk_export import bulk_wsgi
    from .devtools.fhir_server import FhirTestServer

    store = FhirTestServer().load_dir(Path(args.dir))
    print(
        f"demo FHIR server with {len(store.resources)} resources at http://{args.host}:{args.port}/fhir",
        file=sys.stderr,
    )
    bulk_wsgi(store).run(host=args.host, port=args.port, threaded=True)  # with Bulk Data $export
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def _feedback_report(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from .store.engine import make_engine
    from .store.migrate import migrate
    from .store.report import feedback_report, render_text, write_csv

    url = args.database_url or load_settings().database_url
    engine = make_engine(url)
    try:
        migrate(engine)  # an empty or older database reports zeros instead of failing on missing tables
        report = feedback_report(engine, args.since)
    except SQLAlchemyError as exc:
        print(f"cannot read the database ({type(exc).__name__})", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    sys.stdout.write(render_text(report))
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as stream:
            write_csv(report, stream)
        print(f"CSV written to {args.csv}", file=sys.stderr)
    return 0


def _store_prune(args: argparse.Namespace) -> int:
    """Remove audit records, their cards and feedback older than --older-than-days (or count them)."""
    from datetime import timedelta

    from sqlalchemy.exc import SQLAlchemyError

    from .store.engine import DbTimeouts, make_engine
    from .store.migrate import migrate, utcnow
    from .store.retention import count_older, prune

    before = utcnow() - timedelta(days=args.older_than_days)
    # offline maintenance: a count over a large audit table may take longer than a hook call may
    engine = make_engine(args.database_url or load_settings().database_url, DbTimeouts(statement_ms=30_000))
    try:
        migrate(engine)
        done = count_older(engine, before) if args.dry_run else prune(engine, before)
    except SQLAlchemyError as exc:
        print(f"cannot prune the database ({type(exc).__name__})", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {done.audit_records} audit record(s) with {done.audit_cards} card(s) and "
          f"{done.feedback_items} feedback item(s) from before {before:%Y-%m-%d %H:%M} UTC")
    return 0


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}") from None
    if days < 1:
        raise argparse.ArgumentTypeError("the retention period must be at least 1 day")
    return days


def _cms_check(args: argparse.Namespace) -> int:
    """Which release of each CMS table the service would load with the current settings."""
    from .coding.cms import load_tables, synthetic_tables

    settings = load_settings()
    tables = load_tables(settings.with_overrides(allow_synthetic_cms=True))  # report, do not refuse
    for name, table in (("PTP", tables.ptp), ("MUE", tables.mue), ("MPFS", tables.mpfs)):
        src = table.source
        if src is None:
            print(f"{name:<5} not loaded")
            continue
        note = "  SYNTHETIC test data, not a CMS release" if src.synthetic else ""
        rejected = f", {len(src.rejected)} unreadable" if src.rejected else ""
        print(f"{name:<5} release {src.release:<10} {src.rows} rows{rejected}  {src.path}{note}")
    synthetic = synthetic_tables(tables)
    if synthetic and not settings.development_mode and not settings.allow_synthetic_cms:
        print(f"production mode will refuse to start on the synthetic {', '.join(synthetic)} table(s); "
              "set ncci_ptp_path, ncci_mue_path and mpfs_rvu_path", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pumpcds", description="CDS Hooks service for implanted drug-pump visit coding")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the development server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.set_defaults(func=_serve)
    evaluate = sub.add_parser("evaluate", help="answer a CDS Hooks request file, as the HTTP service would")
    evaluate.add_argument("request", help="path to a CDS Hooks request JSON")
    evaluate.add_argument("--service", help="service id (default: from the request's hook)")
    evaluate.add_argument("--strict", action="store_true",
                          help="validate every FHIR resource with the R4 models (fhir_validation: strict)")
    evaluate.set_defaults(func=_evaluate)
    schemas = sub.add_parser("schemas", help="write the JSON Schemas the service enforces")
    schemas.add_argument("--out", default="schemas")
    schemas.set_defaults(func=_schemas)
    demo = sub.add_parser("demo-fhir-server", help="serve FHIR JSON files at /fhir for trying requests without prefetch")
    demo.add_argument("--dir", default="fhir_samples/fhir_server")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8081)
    demo.set_defaults(func=_demo_fhir_server)
    from .devtools.demo import add_command as add_demo_command

    add_demo_command(sub)
    report = sub.add_parser("feedback-report", help="acceptance and override rates per rule and per override reason")
    report.add_argument("--since", type=_date, help="only cards and feedback on or after this UTC date (YYYY-MM-DD)")
    report.add_argument("--csv", help="also write the report as CSV to this path")
    report.add_argument("--database-url", help="database to read (default: the service's DATABASE_URL setting)")
    report.set_defaults(func=_feedback_report)
    prune_cmd = sub.add_parser("store-prune", help="remove audit records and feedback older than a retention period")
    prune_cmd.add_argument("--older-than-days", type=_days, required=True, metavar="DAYS",
                           help="remove what was stored more than DAYS days ago")
    prune_cmd.add_argument("--dry-run", action="store_true", help="only count what would be removed")
    prune_cmd.add_argument("--database-url", help="database to prune (default: the service's DATABASE_URL setting)")
    prune_cmd.set_defaults(func=_store_prune)
    cms = sub.add_parser("cms", help="CMS NCCI/MUE/MPFS tables")
    cms_sub = cms.add_subparsers(dest="cms_command", required=True)
    cms_sub.add_parser("check", help="report which release of each CMS table is loaded").set_defaults(func=_cms_check)
    from .audit.cli import add_parser as add_audit_parser

    add_audit_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
