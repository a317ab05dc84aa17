"""Synthetic FHIR Bulk Data export for the audit: ``python -m bench.export --visits N --noise M --out DIR``.

Pump visits are clones of every sample visit in fhir_samples/ (both hooks: all pump codes, right
and wrong, and every rule's finding), each with its own ids, patient and date (shifted back up to
half a year, so months differ). They are mixed into M unrelated resources of the same patients:
vital signs and labs (some taken during the pump visit itself), oral medication orders, infusions
through external IV pumps, and the encounters of other visits. One NDJSON file per resource type,
as `$export` writes them (`--gzip` for .ndjson.gz). Everything is invented; the generator is
seeded, so the same arguments give the same export.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "fhir_samples"
SHARED_TYPES = ("Practitioner", "PractitionerRole", "Organization", "Location")
PATIENT_TYPES = ("Patient", "Device", "Coverage")
_ENCOUNTER_REF = re.compile(r'"reference":\s*"(?:[^"]*/)?Encounter/([^"/]+)"')
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(.*)$")
SKIP_SAMPLES = {"order-sign-site-mapped-local-codes"}  # needs a site mapping to be a pump visit at all


def _flatten(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict) and value.get("resourceType") == "Bundle":
        for entry in value.get("entry") or ():
            yield from _flatten(entry.get("resource"))
    elif isinstance(value, dict) and isinstance(value.get("resourceType"), str) and value["resourceType"] != "OperationOutcome":
        yield value


def templates() -> list[dict[str, Any]]:
    """One template per sample: its resources, patient id and encounter id (if any)."""
    out = []
    for path in sorted((SAMPLES / "requests").glob("*.json")):
        if path.stem in SKIP_SAMPLES:
            continue
        body = json.loads(path.read_text())
        expected = json.loads((SAMPLES / "expected" / path.name).read_text())
        found: dict[tuple[str, str], dict[str, Any]] = {}
        sources = list((body.get("prefetch") or {}).values()) + [body.get("context", {}).get("draftOrders")]
        if expected.get("fhir_server_dir"):
            sources += [json.loads(p.read_text()) for p in sorted((SAMPLES / expected["fhir_server_dir"]).glob("*.json"))]
        for source in sources:
            for r in _flatten(source):
                found.setdefault((r["resourceType"], str(r.get("id"))), r)
        refs = set(_ENCOUNTER_REF.findall(json.dumps(list(found.values()))))
        out.append({"name": path.stem, "patient": body["context"].get("patientId"), "resources": list(found.values()),
                    "encounter_refs": sorted(refs)})
    return out


def _shift(node: Any, days: int, ids: dict[str, str]) -> Any:
    """Copy with dates moved back `days` days and references/ids renamed through `ids`."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "reference" and isinstance(v, str):
                head, _, tail = v.rpartition("/")
                key = f"{head.rsplit('/', 1)[-1]}/{tail}"
                out[k] = f"{head}/{ids[key].split('/', 1)[1]}" if key in ids else v
            else:
                out[k] = _shift(v, days, ids)
        return out
    if isinstance(node, list):
        return [_shift(v, days, ids) for v in node]
    if isinstance(node, str) and days and (m := _DATE.match(node)):
        try:
            day = dt.date.fromisoformat(m.group(1)) - dt.timedelta(days=days)
        except ValueError:
            return node
        return day.isoformat() + m.group(2)
    return node


class Writer:
    def __init__(self, out: Path, gz: bool) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out, self.gz = out, gz
        self.files: dict[str, IO[bytes]] = {}
        self.counts: dict[str, int] = {}

    def write(self, resource: dict[str, Any]) -> None:
        rtype = resource["resourceType"]
        fh = self.files.get(rtype)
        if fh is None:
            name = f"{rtype}.ndjson" + (".gz" if self.gz else "")
            fh = gzip.open(self.out / name, "wb", compresslevel=1) if self.gz else (self.out / name).open("wb")
            self.files[rtype] = fh
        fh.write(orjson.dumps(resource) + b"\n")
        self.counts[rtype] = self.counts.get(rtype, 0) + 1

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()


def _noise(rng: random.Random, patient: str, n: int, day: dt.date, pump_encounter: str | None, k: int) -> Iterator[dict[str, Any]]:
    """Unrelated resources of one patient: vitals, labs, oral medications, IV pump infusions."""
    subject = {"reference": f"Patient/{patient}"}
    other = f"enc-noise-{k}"
    other_day = day - dt.timedelta(days=rng.randint(3, 90))
    yield {"resourceType": "Encounter", "id": other, "status": "finished",
           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
           "subject": subject, "period": {"start": f"{other_day}T09:00:00Z", "end": f"{other_day}T10:00:00Z"}}
    pump = f"dev-ivpump-{k}"
    yield {"resourceType": "Device", "id": pump, "status": "active", "patient": subject,
           "type": {"text": "external infusion pump"}, "deviceName": [{"name": "Volumetric infusion pump", "type": "user-friendly-name"}]}
    for i in range(n):
        enc = pump_encounter if pump_encounter and rng.random() < 0.05 else other
        when = f"{day if enc == pump_encounter else other_day}T{9 + i % 8:02d}:{i % 60:02d}:00Z"
        kind = rng.random()
        rid = f"n{k}-{i}"
        if kind < 0.45:
            code, unit, value = rng.choice((("8867-4", "/min", 72), ("8480-6", "mm[Hg]", 128), ("8310-5", "Cel", 36.8), ("29463-7", "kg", 81)))
            yield {"resourceType": "Observation", "id": rid, "status": "final",
                   "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                   "code": {"coding": [{"system": "http://loinc.org", "code": code}]}, "subject": subject,
                   "encounter": {"reference": f"Encounter/{enc}"}, "effectiveDateTime": when,
                   "valueQuantity": {"value": value + rng.randint(-5, 5), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}
        elif kind < 0.75:
            code, unit = rng.choice((("2345-7", "mg/dL"), ("718-7", "g/dL"), ("2160-0", "mg/dL"), ("6690-2", "10*3/uL")))
            yield {"resourceType": "Observation", "id": rid, "status": "final",
                   "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
                   "code": {"coding": [{"system": "http://loinc.org", "code": code}]}, "subject": subject,
                   "effectiveDateTime": f"{other_day - dt.timedelta(days=i % 5 + 1)}T07:30:00Z",
                   "valueQuantity": {"value": round(rng.uniform(1, 150), 1), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}
        elif kind < 0.88:
            yield {"resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": "order", "subject": subject,
                   "encounter": {"reference": f"Encounter/{other}"}, "authoredOn": when,
                   "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rng.choice(("197361", "310965", "314076"))}]},
                   "dosageInstruction": [{"text": "one tablet by mouth daily",
                                          "route": {"coding": [{"system": "http://snomed.info/sct", "code": "26643006"}]}}]}
        else:
            yield {"resourceType": "MedicationAdministration", "id": rid, "status": "completed", "subject": subject,
                   "context": {"reference": f"Encounter/{other}"}, "effectiveDateTime": when,
                   "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1807627"}], "text": "sodium chloride 0.9 % infusion"},
                   "device": [{"reference": f"Device/{pump}"}],
                   "dosage": {"route": {"coding": [{"system": "http://snomed.info/sct", "code": "47625008"}]},
                              "rateQuantity": {"value": 100, "unit": "mL/h", "system": "http://unitsofmeasure.org", "code": "mL/h"}}}


def generate(out: Path, visits: int, noise: int, gz: bool = False, seed: int = 16, visits_per_patient: int = 2) -> dict[str, int]:
    rng = random.Random(seed)
    tpls = templates()
    writer = Writer(out, gz)
    shared_written: set[tuple[str, str]] = set()
    patients = max(1, (visits + visits_per_patient - 1) // visits_per_patient)
    per_patient_noise = [noise // patients + (1 if p < noise % patients else 0) for p in range(patients)]
    made = 0
    try:
        for p in range(patients):
            tpl = tpls[p % len(tpls)]
            patient = f"pt-{p:06d}"
            last_day = dt.date(2026, 3, 20)
            for j in range(visits_per_patient):
                if made >= visits:
                    break
                days = rng.randint(0, 180) if j else rng.randint(0, 30)
                suffix = f"-p{p}v{j}"
                ids: dict[str, str] = {}
                for r in tpl["resources"]:
                    rtype, rid = r["resourceType"], str(r.get("id"))
                    if rtype in SHARED_TYPES:
                        continue
                    if rtype == "Patient" or rid == tpl["patient"]:
                        ids[f"{rtype}/{rid}"] = f"Patient/{patient}"
                    elif rtype in ("Device", "Coverage"):
                        ids[f"{rtype}/{rid}"] = f"{rtype}/{rid[:40]}-p{p}"
                    else:
                        ids[f"{rtype}/{rid}"] = f"{rtype}/{rid[:40]}{suffix}"
                if tpl["patient"]:
                    ids[f"Patient/{tpl['patient']}"] = f"Patient/{patient}"
                for enc in tpl["encounter_refs"]:  # encounters named but not sent: still one per clone
                    ids.setdefault(f"Encounter/{enc}", f"Encounter/{enc[:40]}{suffix}")
                pump_encounter = None
                for r in tpl["resources"]:
                    rtype, rid = r["resourceType"], str(r.get("id"))
                    if rtype in SHARED_TYPES:
                        if (rtype, rid) not in shared_written:
                            shared_written.add((rtype, rid))
                            writer.write(r)
                        continue
                    if rtype in PATIENT_TYPES and j:
                        continue  # once per patient
                    clone = _shift(r, days, ids)
                    clone["id"] = ids.get(f"{rtype}/{rid}", f"{rtype}/{rid}").split("/", 1)[1]
                    if rtype == "Encounter":
                        pump_encounter = clone["id"]
                        last_day = dt.date.fromisoformat(clone["period"]["start"][:10]) if clone.get("period") else last_day
                    writer.write(clone)
                made += 1
                n = per_patient_noise[p] // visits_per_patient + (per_patient_noise[p] % visits_per_patient if j == 0 else 0)
                for r in _noise(rng, patient, n, last_day, pump_encounter, p * visits_per_patient + j):
                    writer.write(r)
    finally:
        writer.close()
    return dict(sorted(writer.counts.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, required=True, help="pump visits to generate")
    parser.add_argument("--noise", type=int, default=0, help="unrelated resources of the same patients")
    parser.add_argument("--out", type=Path, default=Path("synthetic-export"), help="folder for the NDJSON files")
    parser.add_argument("--gzip", action="store_true", help="write .ndjson.gz")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    counts = generate(args.out, args.visits, args.noise, args.gzip, args.seed)
    print(f"{sum(counts.values())} resources in {len(counts)} files under {args.out}: " +
          ", ".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
