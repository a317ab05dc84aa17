"""`pumpcds demo` as an integrator runs it, driven the way the CDS Hooks sandbox drives it (issue 15).

One subprocess on free ports for the module; every call goes over real HTTP from a browser-like
client (tests/devtools/sandbox_client.py): CORS preflights with an Origin, metadata, the patient
picker, discovery, prefetch by POST _search, order-sign with the sandbox's own MedicationRequest,
feedback. Each demo patient must give exactly the cards patients.yaml and the README promise.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from service.devtools.demo_data import load_demo_set

from .sandbox_client import ORIGIN, SandboxClient

ROOT = Path(__file__).resolve().parents[2]
PUMPCDS = shutil.which("pumpcds", path=str(Path(sys.executable).parent)) or "pumpcds"
DEMO = load_demo_set()
# the sandbox's Rx Sign screen: no drug chosen, or one of its oral drugs (RxNorm, as it sends it)
ORDERS = {"no drug chosen": None, "oral morphine chosen": ("892582", "Morphine Sulfate 15 MG Oral Tablet")}


class RunningDemo:
    def __init__(self, proc: subprocess.Popen[str], banner: str) -> None:
        self.proc = proc
        self.banner = banner
        self.discovery = re.search(r"discovery URL\): (\S+)", banner).group(1)  # type: ignore[union-attr]
        self.fhir = re.search(r"FHIR server: +(\S+)", banner).group(1)  # type: ignore[union-attr]

    def client(self) -> SandboxClient:
        return SandboxClient(self.fhir, self.discovery)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUMPCDS_") and k not in ("DATABASE_URL", "REDIS_URL")}
    workdir = tmp_path_factory.mktemp("demo")
    proc = subprocess.Popen([PUMPCDS, "demo", "--port", "0", "--fhir-port", "0"], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C stops"):
            break
    banner = "".join(lines)
    assert "Ctrl-C stops" in banner, f"demo did not start: {banner!r} (exit {proc.poll()})"
    running = RunningDemo(proc, banner)
    yield running
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_the_fhir_server_connects_as_the_sandbox_checks_it(demo: RunningDemo) -> None:
    client = demo.client()
    statement = client.connect_fhir_server()
    assert statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == "4.0.1"
    rest = statement["rest"][0]
    by_type = {r["type"]: r for r in rest["resource"]}
    # every search the service's prefetch templates and the sandbox make is declared
    for rtype, params in {"Procedure": {"patient", "date", "encounter", "code", "_id"},
                          "Observation": {"patient", "date", "encounter", "code"},
                          "MedicationAdministration": {"patient", "effective-time", "context"},
                          "ServiceRequest": {"patient", "status", "authored", "code"},
                          "Device": {"patient"}, "Coverage": {"patient", "status"},
                          "PractitionerRole": {"practitioner"}, "Condition": {"patient"},
                          "Encounter": {"patient", "date"}, "ChargeItem": {"context"}}.items():
        assert params <= {p["name"] for p in by_type[rtype]["searchParam"]}, rtype
        assert {"read", "search-type"} <= {i["code"] for i in by_type[rtype]["interaction"]}
    picker = {p["id"]: p["name"] for p in client.patient_list()}
    assert picker == {p.id: p.name for p in DEMO.patients}


def test_the_sandbox_user_is_in_the_data(demo: RunningDemo) -> None:
    client = demo.client()
    resp = client.fetch("GET", f"{demo.fhir}/Practitioner/COREPRACTITIONER1", headers={"Accept": "application/json+fhir"})
    assert resp.status_code == 200 and resp.json()["id"] == "COREPRACTITIONER1"
    assert DEMO.user == "Practitioner/COREPRACTITIONER1"


def test_discovery_lists_unique_ids_one_per_hook_and_no_patient_view(demo: RunningDemo) -> None:
    client = demo.client()
    services = client.discover()
    ids = [s["id"] for s in services.values()]
    hooks = [s["hook"] for s in services.values()]
    assert len(ids) == len(set(ids)) == len(services) == 3
    assert sorted(hooks) == ["encounter-discharge", "order-sign", "org.pumpcds.encounter-close"]
    assert "patient-view" not in hooks  # the sandbox's Patient View screen calls nothing
    assert any(c.preflighted and c.url == demo.discovery for c in client.calls)


def test_demo_visits_are_dated_today(demo: RunningDemo) -> None:
    client = demo.client()
    today = dt.date.today().isoformat()
    for patient in DEMO.patients:
        bundle = client.fetch("POST", f"{demo.fhir}/Procedure/_search", data=f"patient={patient.id}&date={today}",
                              headers={"Content-Type": "application/x-www-form-urlencoded"}).json()
        assert bundle["total"] >= 1, patient.id
    assert f"visits dated today, {today}" in demo.banner


@pytest.mark.parametrize("order", sorted(ORDERS))
@pytest.mark.parametrize("patient", DEMO.patients, ids=lambda p: p.id)
def test_sign_order_gives_the_promised_cards(demo: RunningDemo, patient: Any, order: str) -> None:
    client = demo.client()
    client.connect_fhir_server()
    client.open_patient(patient.id)
    client.discover()
    request, response = client.sign_order(patient.id, ORDERS[order])
    # the prefetch went through POST _search (each preflighted or simple) and filled the keys it could
    searches = [c for c in client.calls if c.method == "POST" and c.url.endswith("/_search")]
    assert searches and all(c.status == 200 for c in searches)
    assert {"procedures", "device", "orders", "practitioner", "practitionerRoles"} <= set(request["prefetch"])
    assert request["prefetch"]["practitioner"]["id"] == "COREPRACTITIONER1"
    # exactly the promised cards (by rule), each naming its code
    assert [c["extension"]["pumpcds"]["ruleId"] for c in response["cards"]] == [c.rule for c in patient.cards]
    for card, promised in zip(response["cards"], patient.cards):
        assert promised.code is None or promised.code in card["summary"], (card["summary"], promised)


def test_feedback_from_a_card_reaches_the_service(demo: RunningDemo) -> None:
    client = demo.client()
    client.connect_fhir_server()
    client.discover()
    _, response = client.sign_order("pump-demo-no-service-order")
    card = next(c for c in response["cards"] if c.get("suggestions"))
    url = next(u for u, s in client.services.items() if s["hook"] == "order-sign")
    assert client.feedback(url, card) == 200


def test_banner_gives_each_patients_sandbox_settings(demo: RunningDemo) -> None:
    for patient in DEMO.patients:
        assert f"fhirServiceUrl={demo.fhir}  patientId={patient.id}  serviceDiscoveryURL={demo.discovery}" in demo.banner
        link = next(line.strip() for line in demo.banner.splitlines() if f"patientId={patient.id}&" in line)
        query = dict(p.split("=", 1) for p in link.split("?", 1)[1].split("&"))
        assert requests.utils.unquote(query["fhirServiceUrl"]) == demo.fhir
        assert requests.utils.unquote(query["serviceDiscoveryURL"]) == demo.discovery
        assert query["screen"] == "rx-sign" and query["hook"] == "order-sign"


def test_a_foreign_origin_is_served_too_on_loopback(demo: RunningDemo) -> None:
    """A self-hosted sandbox (any origin) works: both servers answer CORS for any origin."""
    client = demo.client()
    client.origin = "http://localhost:3000"
    client.connect_fhir_server()
    client.discover()
    assert client.origin != ORIGIN


def test_readme_says_what_each_demo_patient_shows() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Try it in the CDS Hooks sandbox", 1)[1].split("\n## ", 1)[0]
    assert "pumpcds demo" in section
    for patient in DEMO.patients:
        row = next((line for line in section.splitlines() if line.startswith(f"| `{patient.id}` |")), None)
        assert row is not None, patient.id
        if not patient.cards:
            assert "no card" in row, patient.id
        for card in patient.cards:
            assert card.rule in row and (card.code is None or card.code in row), (patient.id, card.rule)


def test_demo_refuses_a_non_loopback_address() -> None:
    proc = subprocess.run([PUMPCDS, "demo", "--host", "0.0.0.0", "--port", "0", "--fhir-port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "loopback only" in proc.stderr


@pytest.mark.parametrize("which", ["service", "fhir"])
def test_preflights_allow_private_network_access(demo: RunningDemo, which: str) -> None:
    """The public sandbox is an https page on the internet calling loopback: Chrome asks first."""
    url = demo.discovery if which == "service" else f"{demo.fhir}/Procedure/_search"
    pre = requests.options(url, timeout=10, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST" if which == "fhir" else "GET",
        "Access-Control-Request-Headers": "authorization", "Access-Control-Request-Private-Network": "true"})
    assert pre.status_code in (200, 204)
    assert pre.headers.get("Access-Control-Allow-Private-Network") == "true"
