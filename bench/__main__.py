"""Run every benchmark and write docs/benchmarks.md: ``python -m bench`` from the repository root.

Options: ``--quick`` (short runs, to try the harness), ``--out PATH`` (another report file).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import http, inprocess, report

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (not for the report of record)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    started = time.time()
    print("in-process stages ...", file=sys.stderr)
    in_process = inprocess.run(max_seconds_per_stage=0.5 if args.quick else 2.0)
    print("HTTP side by side with the baseline, then memory ...", file=sys.stderr)
    over_http = http.run(seconds=3 if args.quick else 10, rounds=1 if args.quick else 2)
    text = report.render(in_process, over_http, duration_s=time.time() - started, quick=args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
