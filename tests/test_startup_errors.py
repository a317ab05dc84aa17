"""Every bad setting stops `pumpcds serve` with one clear line (exit 2, no traceback); a database
that cannot be reached at start is named (host, port, cause) without its URL or password."""
from __future__ import annotations

import logging
import sys

import pytest

from service.cli import main
from service.store.engine import describe
from tests.store.helpers import closed_port


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    import os

    for name in list(os.environ):
        if name.startswith("PUMPCDS_") or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    return monkeypatch


CASES = {
    "not a URL": ({"DATABASE_URL": "notaurl"}, "DATABASE_URL is not a database URL"),
    "unsupported database": ({"DATABASE_URL": "mysql://app:pw@db.example/app"}, "unsupported database 'mysql'"),
    "psycopg2 driver": ({"DATABASE_URL": "postgresql+psycopg2://app@db/app"}, "pumpcds uses psycopg 3"),
    "misspelt setting": ({"PUMPCDS_DEVELOPMNT_MODE": "false"}, "did you mean PUMPCDS_DEVELOPMENT_MODE?"),
    "prefixed database URL": ({"PUMPCDS_DATABASE_URL": "sqlite:///x.db"}, "did you mean DATABASE_URL?"),
    "bad number": ({"PUMPCDS_FHIR_TIME_BUDGET_MS": "fast"}, "expected an integer"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_setting_stops_serve_with_one_line(clean_env, capsys, case):
    env, expected = CASES[case]
    for name, value in env.items():
        clean_env.setenv(name, value)
    assert main(["serve", "--port", str(closed_port())]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], err
    assert "Traceback" not in err and "pw@" not in err


def test_a_postgresql_url_without_the_driver_names_the_extra(clean_env, capsys):
    clean_env.setitem(sys.modules, "psycopg", None)  # as if the [postgres] extra were not installed
    clean_env.setenv("DATABASE_URL", "postgresql://app@db.example:5432/app")
    assert main(["serve", "--port", str(closed_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install 'pumpcds[postgres]'" in err


def test_an_unreachable_database_at_start_is_named_with_its_cause(settings, caplog):
    from service.app import create_app

    port = closed_port()
    url = f"postgresql+psycopg://app:secret-pw@127.0.0.1:{port}/pumpcds"
    with caplog.at_level(logging.ERROR, logger="pumpcds.store"):
        create_app(settings, database_url=url)  # starts anyway: hooks answer, /readyz says not ready
    [line] = [r.getMessage() for r in caplog.records if "not available" in r.getMessage()]
    assert f"127.0.0.1:{port}/pumpcds" in line and "Connection refused" in line
    assert "secret-pw" not in line and describe(url) == f"127.0.0.1:{port}/pumpcds"
