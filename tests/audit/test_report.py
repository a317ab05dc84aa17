"""report.html opens in headless Chromium with every chart drawn and no console error, and
fetches nothing: everything is inline."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.audit.chromium import Chromium, chromium_binary
from tests.audit.exports import ENCOUNTER_CLOSE, sample_resources, write_ndjson

CHARTS = ("rules", "months", "matrix", "gaps", "performers", "dollars")


@pytest.fixture(scope="module")
def browser():
    if chromium_binary() is None:
        pytest.skip("chromium not installed: .ci/run installs it (apt-get install chromium)")
    with Chromium() as chrome:
        yield chrome


def test_report_is_self_contained(run_audit, tmp_path: Path) -> None:
    everything = {(r["resourceType"], r["id"]): r for n in ENCOUNTER_CLOSE for r in sample_resources(n)}
    run_audit([write_ndjson(everything.values(), tmp_path / "export")], tmp_path / "out")
    page = (tmp_path / "out" / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "default-src 'none'" in page  # the page itself forbids any fetch


def test_report_draws_every_chart_without_console_errors(run_audit, browser: Chromium, tmp_path: Path) -> None:
    everything = {(r["resourceType"], r["id"]): r for n in ENCOUNTER_CLOSE for r in sample_resources(n)}
    result = run_audit([write_ndjson(everything.values(), tmp_path / "export")], tmp_path / "out")
    browser.errors.clear()
    browser.open((tmp_path / "out" / "report.html").as_uri())
    assert browser.evaluate("document.body.dataset.ready") == "true"
    drawn = browser.evaluate("Object.fromEntries([...document.querySelectorAll('[data-chart]')].map(e => [e.dataset.chart, e.dataset.drawn || '']))")
    for chart in ("rules", "months", "matrix", "gaps", "performers"):
        assert drawn[chart] not in ("", "empty", "0"), f"chart {chart} not drawn: {drawn}"
    assert drawn["dollars"] == "empty"  # no real fee schedule: said, not drawn as zero
    bars = browser.evaluate("document.querySelectorAll('[data-chart=rules] svg rect').length")
    assert bars >= len(result.run["counts"]["findings_by_rule"])
    rows = browser.evaluate("document.querySelectorAll('#visits tbody tr.visit').length")
    assert rows == result.run["counts"]["pump_visits"]
    # drill down: filter to one rule, open its visit, read its finding
    browser.evaluate("const s = document.getElementById('rulesel'); s.value = 'PERF-QHP-STAFF'; s.dispatchEvent(new Event('input'))")
    assert browser.evaluate("document.querySelectorAll('#visits tbody tr.visit').length") == 1
    browser.evaluate("document.querySelector('#visits tbody tr.visit').click()")
    assert "PERF-QHP-STAFF" in browser.evaluate("document.querySelector('#visits tr.detail').textContent")
    assert browser.errors == []


def test_report_of_an_audit_without_pump_visits(run_audit, browser: Chromium, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "Observation.ndjson").write_text(
        '{"resourceType":"Observation","id":"o1","status":"final","subject":{"reference":"Patient/p"},"effectiveDateTime":"2026-01-02"}\n')
    run_audit([tmp_path / "in"], tmp_path / "out")
    browser.errors.clear()
    browser.open((tmp_path / "out" / "report.html").as_uri())
    assert browser.evaluate("document.body.dataset.ready") == "true"
    assert browser.errors == []


def test_dollars_at_risk_drawn_with_a_real_fee_schedule(browser: Chromium, tmp_path: Path) -> None:
    from service.audit.run import AuditOptions, audit
    from service.config import load_settings
    from tests.audit.test_outputs import _real_looking_mpfs

    everything = {(r["resourceType"], r["id"]): r for n in ENCOUNTER_CLOSE for r in sample_resources(n)}
    settings = load_settings(environ={}, database_url="sqlite://", mpfs_rvu_path=str(_real_looking_mpfs(tmp_path / "PPRRVU26_JAN.csv")))
    audit(AuditOptions([str(write_ndjson(everything.values(), tmp_path / "export"))], tmp_path / "out", workers=1), settings)
    browser.errors.clear()
    browser.open((tmp_path / "out" / "report.html").as_uri())
    assert browser.evaluate("document.querySelector('[data-chart=dollars]').dataset.drawn") not in ("", "empty", "0")
    assert "$" in browser.evaluate("document.getElementById('tiles').textContent")
    assert browser.errors == []
