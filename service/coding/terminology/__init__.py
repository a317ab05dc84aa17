"""The project's own CodeSystem (concepts with no standard code) and lookups into it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

CODESYSTEM_PATH = Path(__file__).with_name("pump-visit.codesystem.json")
PUMPCDS_SYSTEM = "http://pumpcds.org/fhir/CodeSystem/pump-visit"


@dataclass(frozen=True)
class Concept:
    code: str
    display: str
    group: str
    definition: str = ""


@lru_cache(maxsize=1)
def codesystem() -> dict[str, Any]:
    with CODESYSTEM_PATH.open(encoding="utf-8") as fh:
        return json.load(fh)


@lru_cache(maxsize=1)
def concepts() -> dict[str, Concept]:
    """Leaf concepts by code (group concepts are not used as values)."""
    found: dict[str, Concept] = {}
    for group in codesystem()["concept"]:
        for c in group.get("concept", []):
            found[c["code"]] = Concept(c["code"], c["display"], group["code"], c.get("definition", ""))
    return found


def concept(code: str) -> Concept:
    """KeyError for an unknown code: rule data naming a code that does not exist is a bug."""
    return concepts()[code]


def display(code: str) -> str:
    c = concepts().get(code)
    return c.display if c else code


def in_group(group: str) -> list[Concept]:
    return [c for c in concepts().values() if c.group == group]
