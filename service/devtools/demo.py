"""`pumpcds demo`: the service and a demo FHIR server on loopback, ready for the CDS Hooks sandbox.

Both run in this process on two ports. The service runs in development mode (client JWTs not
checked: the sandbox's signing key is public anyway), answers CORS for any origin, and may fetch
only from the demo FHIR server. The FHIR server holds the demo patients (`demo_data.py`) with their
pump visits moved to today. The banner on stdout gives, per patient, the sandbox link and the
cards to expect. Loopback only: the data is synthetic, but nothing here is meant for a network.
"""
from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from .demo_data import SANDBOX_URL, DemoSet, load_demo_set, sandbox_link
from .fhir_server import FhirTestServer


class _LateApp:
    """A WSGI app set after the socket is bound, so the service knows its own port (port 0)."""

    def __init__(self) -> None:
        self.app: Callable[..., Any] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def demo_fhir_server(demo: DemoSet, today: dt.date) -> FhirTestServer:
    server = FhirTestServer(name="pumpcds demo FHIR server (synthetic data)", page_size=100)
    server.add(demo.resources(today))
    return server


def banner(demo: DemoSet, discovery: str, fhir_base: str, today: dt.date, sandbox: str) -> str:
    lines = [
        "pumpcds demo: development only, synthetic patients, loopback only",
        f"  CDS services (discovery URL): {discovery}",
        f"  FHIR server:                  {fhir_base}   (FHIR R4; visits dated today, {today.isoformat()})",
        f"  sandbox user in the data:     {demo.user}",
        "",
        "In the CDS Hooks sandbox: open a link below (or set 'Change FHIR Server', 'Change Patient'",
        "and 'Add CDS Services' to the values shown), go to Rx Sign, choose any medication or none,",
        "and press 'Sign Order'. Patient View calls nothing: no service is registered for patient-view.",
        "",
    ]
    for p in demo.patients:
        expect = "; ".join(f"{c.rule} {c.code or ''}: {c.says}".replace("  ", " ") for c in p.cards) or "no card"
        lines += [
            f"{p.id}  ({p.name}) - {p.case}",
            f"    {p.visit}",
            f"    expect: {expect}",
            f"    fhirServiceUrl={fhir_base}  patientId={p.id}  serviceDiscoveryURL={discovery}",
            f"    {sandbox_link(p.id, fhir_base, discovery, sandbox)}",
            "",
        ]
    lines.append("Ctrl-C stops both servers.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..app import create_app
    from ..config import load_settings

    if not _loopback(args.host):
        print(f"pumpcds demo listens on loopback only (got --host {args.host})", file=sys.stderr)
        return 2
    today = dt.date.today()
    demo = load_demo_set()
    url_host = "localhost" if args.host == "localhost" else args.host
    if ":" in url_host:
        url_host = f"[{url_host}]"

    fhir = demo_fhir_server(demo, today)
    fhir_server = make_server(args.host, args.fhir_port, fhir.wsgi(), threaded=True)
    fhir_base = f"http://{url_host}:{fhir_server.server_port}{fhir.base_path}"

    late = _LateApp()
    service_server = make_server(args.host, args.port, late, threaded=True)
    public = f"http://{url_host}:{service_server.server_port}"
    workdir = None
    database_url = args.database_url
    if not database_url:
        workdir = tempfile.TemporaryDirectory(prefix="pumpcds-demo-")
        database_url = f"sqlite:///{Path(workdir.name) / 'demo.db'}"
    settings = load_settings(
        development_mode=True,
        public_base_url=public,
        cors_origins=("*",),
        fhir_server_allowlist=(fhir_base,),
        # browser, service and FHIR server share one machine: leave room for a cold start
        fhir_time_budget_ms=max(load_settings().fhir_time_budget_ms, 2000),
        database_url=database_url,
    )
    late.app = create_app(settings)

    print(banner(demo, f"{public}/cds-services", fhir_base, today, args.sandbox_url), flush=True)
    servers: list[BaseWSGIServer] = [fhir_server, service_server]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    for s in servers:
        s.shutdown()
    if workdir is not None:
        workdir.cleanup()
    return 0


def add_command(sub: Any) -> None:
    """The `demo` subcommand (kept here so cli.py stays a list of commands)."""
    demo = sub.add_parser(
        "demo",
        help="run the service and a demo FHIR server for the CDS Hooks sandbox (loopback, synthetic data)",
    )
    demo.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8080, help="service port (0: any free port)")
    demo.add_argument("--fhir-port", type=int, default=8081, help="FHIR server port (0: any free port)")
    demo.add_argument("--database-url", help="audit and feedback store (default: a temporary SQLite file)")
    demo.add_argument("--sandbox-url", default=SANDBOX_URL,
                      help=f"sandbox to link to, e.g. your own copy (default {SANDBOX_URL})")
    demo.set_defaults(func=run)
