"""Bulk-Data-style exports made from the sample hook requests: every resource a sample carries
(prefetch, draft orders, and its FHIR server folder) written as NDJSON, one type a file."""
from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "fhir_samples"
ENCOUNTER_CLOSE = sorted(p.stem for p in (SAMPLES / "requests").glob("encounter-close-*.json"))


def _flatten(value: Any) -> Iterable[dict[str, Any]]:
    if isinstance(value, dict) and value.get("resourceType") == "Bundle":
        for entry in value.get("entry") or ():
            yield from _flatten(entry.get("resource"))
    elif isinstance(value, dict) and value.get("resourceType") not in (None, "OperationOutcome"):
        yield value


def sample_resources(name: str) -> list[dict[str, Any]]:
    body = json.loads((SAMPLES / "requests" / f"{name}.json").read_text())
    found: list[dict[str, Any]] = []
    for value in (body.get("prefetch") or {}).values():
        found.extend(_flatten(value))
    found.extend(_flatten(body.get("context", {}).get("draftOrders")))
    expected = json.loads((SAMPLES / "expected" / f"{name}.json").read_text())
    if expected.get("fhir_server_dir"):
        for path in sorted((SAMPLES / expected["fhir_server_dir"]).glob("*.json")):
            found.extend(_flatten(json.loads(path.read_text())))
    unique = {(r["resourceType"], r.get("id")): r for r in found}
    return list(unique.values())


def write_ndjson(resources: Iterable[dict[str, Any]], folder: Path, gz: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in resources:
        by_type[r["resourceType"]].append(r)
    for rtype, items in by_type.items():
        text = "".join(json.dumps(r) + "\n" for r in items)
        if gz:
            with gzip.open(folder / f"{rtype}.ndjson.gz", "wt", encoding="utf-8") as fh:
                fh.write(text)
        else:
            (folder / f"{rtype}.ndjson").write_text(text)
    return folder
