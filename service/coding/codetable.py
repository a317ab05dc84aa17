"""The code table (service/coding/data/codes.yaml): what each code requires and what the record must show.

The same data drives code selection checks, the documentation checklist findings and the
checklist pages served at /docs/codes/<code>, so a page can never disagree with a card.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import yamlfiles
from ..config import ConfigError
from .terminology import Concept, concept

CODES_PATH = Path(__file__).parent / "data" / "codes.yaml"

CPT_SYSTEM = "http://www.ama-assn.org/go/cpt"
HCPCS_SYSTEM = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
SYSTEM_URIS = {"cpt": CPT_SYSTEM, "hcpcs": HCPCS_SYSTEM}


@dataclass(frozen=True)
class CodeInfo:
    code: str
    system: str  # canonical URI
    family: str
    summary: str
    pump_kinds: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    reprogrammed: bool | None = None  # None: the code says nothing about it
    refilled: bool | None = None
    requires_qhp: bool | None = None
    staff_code: str | None = None  # the same service when clinical staff do it
    qhp_code: str | None = None  # the same service when it needs physician/QHP skill
    documentation: tuple[str, ...] = ()
    verification: str = "I"
    source: str = ""

    @property
    def pump_family(self) -> bool:
        """62367-62370 and 95990/95991: at most one of these per session."""
        return self.family in {"spinal-pump", "spinal-refill"}


@dataclass(frozen=True)
class ElementPolicy:
    """Whether a missing documentation element earns a card (docs/cards.md, alert policy)."""

    element: str
    required_for: frozenset[str] | None  # None: every pump-family code
    source: str
    asked_by: str | None = None  # the rule that asks for it instead of the checklist

    def required(self, code: str) -> bool:
        return self.required_for is None or code in self.required_for


@dataclass(frozen=True)
class CodeTable:
    version: str
    codes: dict[str, CodeInfo]
    common_documentation: tuple[str, ...]
    # official descriptors, only from a licensed file the deployment configures (cpt_descriptor_path)
    descriptors: dict[str, str] = field(default_factory=dict)
    policy: dict[str, ElementPolicy] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = CODES_PATH) -> CodeTable:
        with path.open(encoding="utf-8") as fh:
            raw: dict[str, Any] = yamlfiles.safe_load(fh)
        codes = {}
        for code, spec in raw["codes"].items():
            spec = dict(spec)
            spec["system"] = SYSTEM_URIS[spec["system"]]
            for key in ("pump_kinds", "targets", "documentation"):
                spec[key] = tuple(spec.get(key, ()))
            codes[str(code)] = CodeInfo(code=str(code), **spec)
        policy = {}
        for element, spec in (raw.get("documentation_policy") or {}).items():
            wanted = spec.get("required_for", [])
            policy[element] = ElementPolicy(
                element, None if wanted == "all" else frozenset(str(c) for c in wanted),
                str(spec.get("source", "")), spec.get("asked_by"))
        table = cls(str(raw["version"]), codes, tuple(raw.get("common_documentation", ())), policy=policy)
        table.check()
        return table

    def check(self) -> None:
        """Fail at start, not at a clinician's signature, when the data names unknown concepts."""
        for info in self.codes.values():
            for element in (*info.documentation, *self.common_documentation):
                concept(element)
                if element not in self.policy:
                    raise ValueError(f"codes.yaml: documentation_policy has no entry for {element}")
            for kind in (*info.pump_kinds, *info.targets):
                concept(kind)
            for other in (info.staff_code, info.qhp_code):
                if other is not None and other not in self.codes:
                    raise ValueError(f"codes.yaml: {info.code} points to unknown code {other}")

    def with_descriptors(self, path: str) -> CodeTable:
        """This table plus the official CPT descriptors of a licensed file (CSV or tab-separated:
        code, descriptor; a header row is allowed). Without it only pumpcds's own summaries are shown."""
        if not path:
            return self
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"cpt_descriptor_path: no such file: {path}")
        descriptors: dict[str, str] = {}
        with p.open(encoding="utf-8-sig", newline="") as fh:
            sample = fh.read(4096)
            fh.seek(0)
            delimiter = "\t" if "\t" in sample else ","
            for row in csv.reader(fh, delimiter=delimiter):
                if len(row) >= 2 and row[0].strip().isalnum() and len(row[0].strip()) == 5:
                    descriptors[row[0].strip().upper()] = row[1].strip()
        return replace(self, descriptors=descriptors)

    def description(self, code: str) -> str:
        """The licensed descriptor when configured, else pumpcds's own plain summary."""
        if code in self.descriptors:
            return self.descriptors[code]
        info = self.codes.get(code)
        return info.summary if info else code

    def get(self, code: str | None) -> CodeInfo | None:
        return self.codes.get(code) if code else None

    def pump_family_codes(self) -> list[str]:
        return [c for c, i in self.codes.items() if i.pump_family]

    def checklist(self, code: str) -> list[Concept]:
        """Every element the record must show for this code: the common ones, then the code's own."""
        info = self.codes.get(code)
        if info is None:
            return []
        elements = (*self.common_documentation, *info.documentation) if info.pump_family else info.documentation
        seen: dict[str, Concept] = {}
        for e in elements:
            seen.setdefault(e, concept(e))
        return list(seen.values())

    def required(self, code: str, element: str) -> bool:
        """A missing element earns a card for this code only when the policy says it is required."""
        p = self.policy.get(element)
        return p is not None and p.required(code)


@lru_cache(maxsize=1)
def default_code_table() -> CodeTable:
    return CodeTable.load()
