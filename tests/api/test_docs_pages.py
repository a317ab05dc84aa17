"""Documentation pages the cards link to: one per code in codes.yaml and per rule in rules.yaml,
HTML by default and JSON on request, 404 for the unknown, and every value HTML-escaped."""
from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from service.app import create_app
from service.cdshooks.docpages import DocPages
from service.coding.codetable import default_code_table
from service.coding.rulebook import RuleBook
from service.config import load_settings
from tests.cdshooks.test_suggestions import ORDER_URL, order, order_sign

ROOT = Path(__file__).resolve().parents[2]
CODES = default_code_table()
BOOK = RuleBook.load()
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
JSON = {"Accept": "application/json"}


@pytest.mark.parametrize("code", list(CODES.codes))
def test_every_code_has_a_page_listing_what_to_document(client, code: str) -> None:
    resp = client.get(f"/docs/codes/{code}")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    page = resp.get_data(as_text=True)
    assert f"<h1>{code}: what to document</h1>" in page
    for item in CODES.checklist(code):
        assert item.display.replace("'", "&#39;") in page
    data = client.get(f"/docs/codes/{code}", headers=JSON).get_json()
    assert data["code"] == code and data["description"] == CODES.description(code)
    assert [i["code"] for i in data["checklist"]] == [c.code for c in CODES.checklist(code)]


def test_the_checklist_of_62370_has_the_common_and_its_own_elements(client) -> None:
    data = client.get("/docs/codes/62370", headers=JSON).get_json()
    codes = [i["code"] for i in data["checklist"]]
    assert codes[0] == "doc-visit-date" and "doc-qhp-skill-reason" in codes and "doc-supervising-physician" not in codes
    assert {"code": "62369", "why": "the same service when clinical staff do it"} in data["related"]


@pytest.mark.parametrize("rule", [r.id for r in BOOK.rules])
def test_every_rule_has_a_page(client, rule: str) -> None:
    r = BOOK.get(rule)
    page = client.get(f"/docs/rules/{rule}").get_data(as_text=True)
    assert f"<h1>{rule}: " in page and r.effective.isoformat() in page
    data = client.get(f"/docs/rules/{rule}", headers=JSON).get_json()
    assert (data["id"], data["version"], data["title"], data["source"], data["severity"], data["verification"]) == \
        (r.id, r.version, r.title, r.source, r.severity.value, r.verification)
    assert data["url"] == f"http://localhost:8080/docs/rules/{rule}"
    assert {p["name"] for p in data["params"]} == {k.replace("_", " ") for k in r.params}


def test_the_selection_matrix_is_shown_as_rows(client) -> None:
    data = client.get("/docs/rules/SEL-MATRIX", headers=JSON).get_json()
    rows = next(p for p in data["params"] if p["name"] == "rows")["lines"]
    assert "reprogrammed: yes; refilled: yes; qhp performed: no → 62369" in rows


def test_index_pages_list_every_code_and_rule(client) -> None:
    codes = client.get("/docs/codes", headers=JSON).get_json()["codes"]
    assert [c["code"] for c in codes] == list(CODES.codes)
    rules = client.get("/docs/rules", headers=JSON).get_json()
    assert [r["id"] for r in rules["rules"]] == [r.id for r in BOOK.rules] and rules["rulebookVersion"] == BOOK.version
    page = client.get("/docs/rules").get_data(as_text=True)
    assert all(f'href="http://localhost:8080/docs/rules/{r.id}"' in page for r in BOOK.rules)


@pytest.mark.parametrize("path", ["/docs/codes/99999", "/docs/codes/<script>", "/docs/rules/NO-SUCH-RULE"])
def test_unknown_pages_are_404_with_a_clear_message(client, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 404
    outcome = resp.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "pumpcds has no" in outcome["issue"][0]["diagnostics"] and "/docs/" in outcome["issue"][0]["diagnostics"]
    browser = client.get(path, headers=HTML)
    assert browser.status_code == 404 and browser.mimetype == "text/html"
    assert "<script>" not in browser.get_data(as_text=True)
    assert "pumpcds has no" in browser.get_data(as_text=True)


def test_page_values_are_html_escaped(tmp_path: Path) -> None:
    """A description or rule title with markup is shown as text, never as markup."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    codes_yaml = (ROOT / "service/coding/data/codes.yaml").read_text().replace(
        "summary: As 62369, when the work needed", "summary: <script>alert(1)</script> & \"As 62369\", when the work needed")
    rules_yaml = (ROOT / "service/coding/data/rules.yaml").read_text().replace(
        "title: One pump-family code per session", "title: One <b>pump</b> code & \"session\"")
    (data_dir / "codes.yaml").write_text(codes_yaml)
    (data_dir / "rules.yaml").write_text(rules_yaml)
    from service.coding.codetable import CodeTable

    pages = DocPages.load(ROOT / "cards", RuleBook.load(data_dir / "rules.yaml"), CodeTable.load(data_dir / "codes.yaml"),
                          "http://localhost:8080")
    code_page = pages.html("code", pages.code("62370"))
    assert "<script>" not in code_page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;As 62369&#34;" in code_page
    rule_page = pages.html("rule", pages.rule("BUN-FAMILY-DUP"))
    assert "<b>pump</b>" not in rule_page and "One &lt;b&gt;pump&lt;/b&gt; code &amp; &#34;session&#34;" in rule_page


def test_card_links_resolve_on_a_running_server(settings) -> None:
    """The links a card carries are pages this very service serves (public_base_url)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(settings.with_overrides(public_base_url=f"http://127.0.0.1:{port}"))
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        body = order_sign([order("a", "62370")])
        cards = requests.post(f"http://127.0.0.1:{port}{ORDER_URL}", json=body, timeout=10).json()["cards"]
        urls = {c["source"]["url"] for c in cards} | {link["url"] for c in cards for link in c.get("links", ())}
        assert any("/docs/codes/62369" in u for u in urls) and any("/docs/rules/PERF-QHP-STAFF" in u for u in urls)
        for url in urls:
            resp = requests.get(url, timeout=10)
            assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html"), url
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_pages_fail_at_start_when_a_page_template_is_broken(tmp_path: Path) -> None:
    root = tmp_path / "cards"
    shutil.copytree(ROOT / "cards", root)
    page = root / "pages" / "code.html.j2"
    page.write_text(page.read_text().replace("{{ page.description }}", "{{ page.descriptoin }}"))
    from service.config import ConfigError

    with pytest.raises(ConfigError, match=r"pages/code\.html\.j2: page template does not render: .*descriptoin"):
        create_app(load_settings(environ={}, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", cards_dir=str(root)))


def test_code_pages_split_required_from_good_practice_with_sources(client) -> None:
    data = client.get("/docs/codes/62367", headers=JSON).get_json()
    level = {item["code"]: item["level"] for item in data["checklist"]}
    assert level["doc-reservoir-status"] == "required" and level["doc-indication"] == "good practice"
    assert level["doc-duration"] == "good practice"  # decided: no descriptor is time-based
    assert all(item["source"] for item in data["checklist"])
    page = client.get("/docs/codes/62367").get_data(as_text=True)
    assert "The record must show" in page and "Good practice" in page and "time-based" in page


@pytest.mark.parametrize("code", ["99213", "J0475", "J2278", "62362", "62350"])
def test_every_code_a_card_can_name_has_a_page(client, code: str) -> None:
    assert client.get(f"/docs/codes/{code}").status_code == 200


def test_pages_for_users_never_send_them_to_project_files(client) -> None:
    for path in ["/docs/codes", "/docs/rules", *(f"/docs/rules/{r.id}" for r in BOOK.rules),
                 "/docs/codes/62369", "/docs/codes/99213"]:
        page = client.get(path).get_data(as_text=True)
        for word in ("rules.yaml", "codes.yaml", "cards/rules", ".md", "seed 0"):
            assert word not in page, (path, word)


def test_rules_resting_on_a_synthetic_cms_table_never_call_themselves_verified(client, settings, tmp_path: Path) -> None:
    """The bundled CMS tables are invented values: the NCCI and modifier rules' pages say so; once a
    PTP release is configured, the PTP rule shows its own verification again."""
    ncci = {r.id for r in BOOK.rules if r.check in ("ncci-ptp", "ncci-mue", "modifier-indicators")}
    assert ncci
    index = {r["id"]: r["verification_label"] for r in client.get("/docs/rules", headers=JSON).get_json()["rules"]}
    for rule in BOOK.rules:
        page = client.get(f"/docs/rules/{rule.id}", headers=JSON).get_json()
        if rule.id in ncci:
            assert index[rule.id] == page["verification_label"] == "test data: synthetic CMS table, not a CMS release"
        else:
            assert "test data" not in index[rule.id] and "test data" not in page["verification_label"]

    ptp = tmp_path / "ptp.txt"
    ptp.write_text("Column 1\tColumn 2\t*\tEffective Date\tDeletion Date\tModifier\tPTP Edit Rationale\n"
                   "62370\t62369\t\t20120101\t*\t0\tx\n")
    real = create_app(settings.with_overrides(ncci_ptp_path=str(ptp))).test_client()
    labels = {r["id"]: (r["verification_label"], BOOK.get(r["id"]).check)
              for r in real.get("/docs/rules", headers=JSON).get_json()["rules"]}
    for rule_id, (label, check) in labels.items():
        assert ("test data" in label) == (check in ("ncci-mue", "modifier-indicators")), rule_id
