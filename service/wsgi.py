"""WSGI entry point for gunicorn (deploy/gunicorn.conf.py): a bad setting stops the start with one
line on stderr and exit status 2, as `pumpcds serve` does, instead of a traceback per worker."""
from __future__ import annotations

import sys

from flask import Flask

from .config import ConfigError


def application() -> Flask:
    from .app import create_app

    try:
        return create_app()
    except ConfigError as exc:
        print(f"pumpcds: configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
