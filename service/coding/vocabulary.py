"""Recognising standard and site codes: which system a coding is in and what it means for a pump visit.

Tables live in service/coding/data/vocabulary.yaml and drugs.yaml; the site mapping (a hospital's
local codes -> pumpcds concepts) in the YAML file named by the setting `site_mapping_path`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import yamlfiles
from ..config import ConfigError
from ..fhir.jsonview import codings
from .terminology import PUMPCDS_SYSTEM, concepts

DATA = Path(__file__).parent / "data"
PUMPCDS = "pumpcds"
# well-known code systems: a code in one of them is not a site's local code
STANDARD_PREFIXES = (
    "http://loinc.org", "http://snomed.info", "http://terminology.hl7.org", "http://hl7.org/fhir",
    "http://unitsofmeasure.org", "http://www.nlm.nih.gov", "http://www.ama-assn.org", "https://www.ama-assn.org",
    "http://www.cms.gov", "https://www.cms.gov", "http://nucc.org", "http://pumpcds.org", "urn:oid:2.16.840.1.113883",
)


@dataclass(frozen=True)
class DrugInfo:
    key: str
    names: tuple[str, ...]
    rxnorm: tuple[str, ...]
    hcpcs: str
    unit_value: float
    unit: str
    verification: str


class Vocabulary:
    def __init__(self, vocab: dict[str, Any], drugs: dict[str, Any], site_mapping: dict[tuple[str, str], str]) -> None:
        self.system_names: dict[str, str] = {PUMPCDS_SYSTEM: PUMPCDS}
        self._names: dict[str, str | None] = {}  # system URI as sent -> its short name (memo of system())
        self._standing: dict[str, tuple[str, str]] = {}  # system URI as sent -> standing() (memo)
        for name, uris in vocab["systems"].items():
            for uri in uris:
                self.system_names[uri] = name
        self.routes: dict[str, str] = {str(k): v for k, v in vocab["routes"].items()}
        self.device_types: dict[str, dict[str, str]] = {str(k): v for k, v in vocab["device_types"].items()}
        self.pump_models: list[tuple[str, str]] = sorted(
            ((k.lower(), v) for k, v in vocab["pump_models"].items()), key=lambda kv: -len(kv[0])
        )
        q = vocab["qualifications"]
        self.qual_nucc: dict[str, dict[str, str]] = q["nucc"]
        self.nucc_physician_prefix: str = str(q["nucc_physician_prefix"])
        self.qual_snomed: dict[str, dict[str, str]] = {str(k): v for k, v in q["snomed"].items()}
        self.qual_v2: dict[str, dict[str, str]] = q["v2_0360"]
        self.qual_text: dict[str, str] = {k.upper(): v for k, v in q["text"].items()}
        self.drugs: list[DrugInfo] = [
            DrugInfo(
                key, tuple(n.lower() for n in d["names"]), tuple(str(c) for c in d.get("rxnorm", ())),
                d["hcpcs"], float(d["unit"]["value"]), d["unit"]["unit"], d.get("verification", "U"),
            )
            for key, d in drugs["drugs"].items()
        ]
        self.drug_by_hcpcs = {d.hcpcs: d for d in self.drugs}
        # CPT/HCPCS codes that mean a drug-pump service is involved (the relevance gate)
        self.pump_service_codes: frozenset[str] = frozenset(
            str(c) for c in (vocab.get("relevance") or {}).get("service_codes", ())
        )
        self.site_mapping = site_mapping
        known = concepts()
        for target in site_mapping.values():
            if target not in known:
                raise ConfigError(f"site mapping: '{target}' is not a pumpcds concept")

    @classmethod
    def load(cls, site_mapping_path: str = "") -> Vocabulary:
        with (DATA / "vocabulary.yaml").open(encoding="utf-8") as fh:
            vocab = yamlfiles.safe_load(fh)
        with (DATA / "drugs.yaml").open(encoding="utf-8") as fh:
            drugs = yamlfiles.safe_load(fh)
        return cls(vocab, drugs, load_site_mapping(site_mapping_path))

    def system(self, uri: str | None) -> str | None:
        """Short name of a code system ('cpt', 'hcpcs', 'snomed', 'pumpcds', ...) or None."""
        if not uri:
            return None
        name = self.system_names.get(uri)
        if name is not None:
            return name
        return self.system_names.get(uri.strip().rstrip("/")) or self.system_names.get(uri.strip())

    def standing(self, uri: Any) -> tuple[str, str]:
        """(the system as compared, "known" | "local" | "standard"): a system pumpcds reads, a
        site's own, or a standard one it does not read (or none). Remembered per URI (bounded)."""
        if type(uri) is str:
            found = self._standing.get(uri)
            if found is not None:
                return found
        system = uri.strip() if type(uri) is str else ""
        kind = ("known" if self.system(system) is not None
                else "local" if system and not system.startswith(STANDARD_PREFIXES) else "standard")
        if type(uri) is str and len(self._standing) < 1024:
            self._standing[uri] = (system, kind)
        return system, kind

    def codings(self, concept: Any) -> list[tuple[str | None, str, str | None]]:
        """(system name, code, display) of a CodeableConcept (or Coding) as FHIR JSON, with site
        mapping applied: a mapped local code is given as the pumpcds concept it maps to (and as itself).

        The readers ask this ~40 times a visit; system names are looked up in `_names`, which
        remembers every system URI seen (a few dozen in practice; bounded)."""
        mapping = self.site_mapping
        names = self._names
        out: list[tuple[str | None, str, str | None]] = []
        for c in codings(concept):
            code = c.get("code")
            if type(code) is not str:
                continue
            code = code.strip()
            if not code:
                continue
            system = c.get("system")
            system = system if type(system) is str else ""
            display = c.get("display")
            display = display if type(display) is str else None
            if mapping:
                mapped = mapping.get((system.strip(), code))
                if mapped:
                    out.append((PUMPCDS, mapped, display))
            try:
                name = names[system]
            except KeyError:
                name = self.system(system)
                if len(names) < 1024:
                    names[system] = name
            out.append((name, code, display))
        return out

    def drug_for(self, rxnorm: set[str], texts: list[str], hcpcs: set[str]) -> DrugInfo | None:
        for code in hcpcs:
            if code in self.drug_by_hcpcs:
                return self.drug_by_hcpcs[code]
        for d in self.drugs:
            if rxnorm & set(d.rxnorm):
                return d
        lowered = " ".join(t.lower() for t in texts if t)
        for d in self.drugs:
            if any(n in lowered for n in d.names):
                return d
        return None

    def model_kind(self, *texts: str | None) -> tuple[str | None, str | None]:
        """(pump kind, matched model name) from device names, model numbers or manufacturer text."""
        for text in texts:
            low = (text or "").lower()
            for name, kind in self.pump_models:
                if name in low:
                    return kind, name
        return None, None


def load_site_mapping(path: str) -> dict[tuple[str, str], str]:
    """YAML: `mappings: [{system: ..., code: ..., target: <pumpcds code>}]`."""
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"site_mapping_path: no such file: {path}")
    with p.open(encoding="utf-8") as fh:
        raw = yamlfiles.safe_load(fh) or {}
    mapping: dict[tuple[str, str], str] = {}
    for i, m in enumerate(raw.get("mappings") or ()):
        try:
            mapping[(str(m["system"]).strip(), str(m["code"]).strip())] = str(m["target"]).strip()
        except (KeyError, TypeError):
            raise ConfigError(f"site mapping {path}: entry {i + 1} needs system, code and target") from None
    return mapping
