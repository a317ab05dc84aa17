"""Payer profiles (service/coding/data/payer-profiles.yaml): which parameter changes count as
reprogramming for a payer, and which payer a visit's coverage names."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import yamlfiles
from ..config import ConfigError
from .visit import PumpVisit

PROFILES_PATH = Path(__file__).parent / "data" / "payer-profiles.yaml"


@dataclass(frozen=True)
class PayerProfile:
    name: str
    description: str
    reprogramming_parameters: frozenset[str]


@dataclass(frozen=True)
class PayerProfiles:
    profiles: Mapping[str, PayerProfile]
    payers: tuple[Mapping[str, str], ...]
    default: str

    @classmethod
    def load(cls, default: str, path: Path = PROFILES_PATH) -> PayerProfiles:
        with path.open(encoding="utf-8") as fh:
            raw = yamlfiles.safe_load(fh)
        profiles = {
            name: PayerProfile(name, spec["description"], frozenset(spec["reprogramming_parameters"]))
            for name, spec in raw["profiles"].items()
        }
        if default not in profiles:
            raise ConfigError(f"default_payer_profile: unknown profile {default!r} (known: {', '.join(profiles)})")
        payers = tuple(raw.get("payers") or ())
        for payer in payers:
            if payer.get("profile") not in profiles:
                raise ConfigError(f"{path}: payer {payer.get('identifier') or payer.get('display_contains')!r}: "
                                  f"unknown profile {payer.get('profile')!r} (known: {', '.join(profiles)})")
        return cls(profiles, payers, default)

    def for_visit(self, visit: PumpVisit) -> tuple[PayerProfile, str | None]:
        """(profile, the payer it was chosen for, or None when the default applies)."""
        for payer in self.payers:
            ident = payer.get("identifier")
            if ident and ident in visit.payer_identifiers:
                return self.profiles[payer["profile"]], payer["profile"]
            text = (payer.get("display_contains") or "").lower()
            if text and any(text in n.lower() for n in visit.payer_names):
                return self.profiles[payer["profile"]], payer["profile"]
        return self.profiles[self.default], None
