"""`pumpcds audit --fhir-export`: $export kick-off, polling with Retry-After, download, bearer token,
against the Bulk Data endpoints of the demo FHIR server on loopback."""
from __future__ import annotations

import datetime as dt
import email.utils
from pathlib import Path

import pytest

from service.audit.bulk import BulkClient, BulkExportError, read_token, retry_after
from service.cli import main
from service.devtools.bulk_export import BulkExport
from service.devtools.fhir_server import FhirTestServer
from tests.audit.conftest import rows
from tests.audit.exports import ENCOUNTER_CLOSE, sample_resources, write_ndjson

TOKEN = "test-bulk-token-1234"


@pytest.fixture
def fhir(live_server_factory):
    server = FhirTestServer()
    everything = {(r["resourceType"], r["id"]): r for n in ENCOUNTER_CLOSE for r in sample_resources(n)}
    server.add(everything.values())
    bulk = BulkExport(server, token=TOKEN, polls_before_ready=2, retry_after_s=0)
    live = live_server_factory(bulk.register(server.wsgi()))
    return server, bulk, f"{live.url}/fhir", list(everything.values())


def test_audit_of_a_bulk_export_finds_what_the_files_give(fhir, tmp_path: Path, run_audit, monkeypatch, capsys) -> None:
    server, bulk, base, resources = fhir
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    (tmp_path / "token").write_text(TOKEN + "\n")
    assert main(["audit", "--fhir-export", base, "--bearer-token-file", str(tmp_path / "token"),
                 "--out", str(tmp_path / "out"), "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "after 3 status polls" in err and TOKEN not in err
    kick = [r for r in server.requests if r.path.endswith("$export")]
    assert len(kick) == 1 and kick[0].headers.get("Prefer") == "respond-async"
    assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in server.requests)
    assert any(r.path.startswith("/fhir/bulkfiles/") for r in server.requests)
    assert bulk.jobs == {}  # the client deleted the job when done
    exported = sorted((tmp_path / "out" / "export").glob("*.ndjson"))
    assert {p.name.split(".")[0] for p in exported} >= {"Encounter", "Procedure", "Observation", "Device"}
    # same findings as auditing the same resources from local NDJSON
    run_audit([write_ndjson(resources, tmp_path / "local")], tmp_path / "local-out")
    key = lambda f: (f["encounter_id"], f["rule_id"], f["kind"], f["recommended_code"])  # noqa: E731
    assert sorted(map(key, rows(tmp_path / "out" / "findings.parquet"))) == sorted(map(key, rows(tmp_path / "local-out" / "findings.parquet")))


def test_token_from_the_environment_and_refusals_said_clearly(fhir, tmp_path: Path, monkeypatch) -> None:
    _, _, base, _ = fhir
    monkeypatch.setenv("PUMPCDS_BULK_TOKEN", TOKEN)
    assert read_token(None) == TOKEN
    got = BulkClient(base, read_token(None), sleep=lambda s: None).export(tmp_path / "e", types=["Device", "Coverage"])
    assert {p.name.split(".")[0] for p in got.files} == {"Device", "Coverage"}
    with pytest.raises(BulkExportError, match="refused: HTTP 401"):
        BulkClient(base, "wrong-token").export(tmp_path / "f")
    with pytest.raises(BulkExportError, match="token file .* is empty"):
        (tmp_path / "empty").write_text("")
        read_token(str(tmp_path / "empty"))


def test_cli_export_failure_exits_2_without_a_trace(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("PUMPCDS_BULK_TOKEN", raising=False)
    assert main(["audit", "--fhir-export", "http://127.0.0.1:9/fhir", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "cannot reach" in capsys.readouterr().err


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after("5", 1, 120) == 5
    assert retry_after("600", 1, 120) == 120
    assert retry_after(None, 1, 120) == 1
    soon = email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after(soon, 1, 120) <= 31
    assert retry_after("garbage", 2, 120) == 2


def test_polling_waits_as_told(fhir, tmp_path: Path) -> None:
    server, bulk, base, _ = fhir
    bulk.retry_after_s = 7
    waits: list[float] = []
    got = BulkClient(base, TOKEN, sleep=waits.append).export(tmp_path / "e", level="patient")
    assert waits == [7, 7] and got.polls == 3
