"""The demo patients of `pumpcds demo`: their FHIR data, moved to today, and what each shows.

`demo/patients.yaml` lists the patients (id, case, the visit in words, the cards the sandbox's
order-sign gives); `demo/*.json` hold their resources as collection Bundles, written around
`anchor_date`. At start every date is shifted by the same number of days so the anchor becomes
today (the machine's local date, as the sandbox's browser dates its order): the pump visits are
today's and the earlier visits keep their distance. Birth dates stay as written.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from .. import yamlfiles

DEMO_DIR = Path(__file__).with_name("demo")
SANDBOX_URL = "https://sandbox.cds-hooks.org/"
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?$")
_FIXED = frozenset({"birthDate"})


@dataclass(frozen=True)
class ExpectedCard:
    rule: str  # the rule id the card carries in extension.pumpcds.ruleId
    code: str | None  # the code the card is about, when it names one
    says: str  # what the card asks, in a few words (README and the start banner)


@dataclass(frozen=True)
class DemoPatient:
    id: str
    name: str
    case: str
    visit: str
    cards: tuple[ExpectedCard, ...]


@dataclass(frozen=True)
class DemoSet:
    anchor: dt.date
    user: str  # the sandbox's fixed user, present in the data
    patients: tuple[DemoPatient, ...]
    files: tuple[Path, ...]

    def resources(self, today: dt.date) -> list[dict[str, Any]]:
        """Every resource of every file, dated as if the anchor day were `today`."""
        days = (today - self.anchor).days
        out: list[dict[str, Any]] = []
        for path in self.files:
            bundle = json.loads(path.read_text(encoding="utf-8"))
            out.extend(shift_dates(e["resource"], days) for e in bundle.get("entry", []))
        return out


def load_demo_set(directory: Path = DEMO_DIR) -> DemoSet:
    manifest = yamlfiles.safe_load((directory / "patients.yaml").read_text(encoding="utf-8"))
    patients = tuple(
        DemoPatient(
            id=p["id"], name=p["name"], case=p["case"], visit=" ".join(p["visit"].split()),
            cards=tuple(ExpectedCard(c["rule"], str(c["code"]) if c.get("code") else None, c["says"])
                        for c in p.get("cards") or ()),
        )
        for p in manifest["patients"]
    )
    return DemoSet(
        anchor=dt.date.fromisoformat(str(manifest["anchor_date"])),
        user=manifest["user"],
        patients=patients,
        files=tuple(sorted(directory.glob("*.json"))),
    )


def shift_dates(node: Any, days: int, key: str | None = None) -> Any:
    """A copy of `node` with every FHIR date/dateTime moved by `days` (time and offset kept)."""
    if isinstance(node, dict):
        return {k: shift_dates(v, days, k) for k, v in node.items()}
    if isinstance(node, list):
        return [shift_dates(v, days, key) for v in node]
    if isinstance(node, str) and key not in _FIXED:
        m = _DATE.match(node)
        if m:
            moved = dt.date.fromisoformat(m.group(1)) + dt.timedelta(days=days)
            return moved.isoformat() + (m.group(2) or "")
    return node


def sandbox_link(patient_id: str, fhir_base: str, discovery_url: str, sandbox: str = SANDBOX_URL) -> str:
    """The sandbox opened on this patient, our FHIR server and services, on the Rx Sign screen."""
    query = urlencode({
        "fhirServiceUrl": fhir_base,
        "patientId": patient_id,
        "serviceDiscoveryURL": discovery_url,
        "hook": "order-sign",
        "screen": "rx-sign",
    })
    return f"{sandbox}{'&' if '?' in sandbox else '?'}{query}"
