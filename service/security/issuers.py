"""Registered CDS clients (JWT issuers), read from the YAML file named by `jwt_issuers_path`.

File format (see docs/security.md and issuers.example.yaml)::

    issuers:
      - iss: https://ehr.example.org/interconnect/        # exact `iss` claim
        jku: [https://ehr.example.org/.../PublicKeys/]     # allowed `jku` header values
        jwks_file: keys/ehr.jwks.json                      # or keys exchanged out of band
        algorithms: [RS384]                                # default [ES384, RS384]
        tenants: [hospital-a]                              # optional `tenant` allow-list

Relative `jwks_file` paths are resolved against the issuers file's directory.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import yamlfiles
from ..config import ConfigError
from .keys import VerificationKey, jku_url_problem, parse_jwks

DEFAULT_ALGORITHMS = ("ES384", "RS384")
# Asymmetric JWS algorithms an issuer may be configured for. `none` and HS* never (CDS Hooks 2.0).
ASYMMETRIC_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)


@dataclass(frozen=True)
class Issuer:
    iss: str
    jku_allowlist: tuple[str, ...] = ()
    keys: dict[str, VerificationKey] | None = None  # from jwks_file; None when keys come from jku
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    tenants: tuple[str, ...] = ()
    note: str = ""


def _str_list(entry: dict[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = entry.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: '{name}' must be a string or a list of strings")
    return tuple(value)


def parse_issuer(entry: Any, base_dir: Path, *, development_mode: bool, where: str) -> Issuer:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: each issuer must be a mapping")
    unknown = sorted(set(entry) - {"iss", "jku", "jwks_file", "algorithms", "tenants", "note"})
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    iss = entry.get("iss")
    if not isinstance(iss, str) or not iss:
        raise ConfigError(f"{where}: 'iss' is required")
    jku = _str_list(entry, "jku", where)
    for url in jku:
        problem = jku_url_problem(url, development_mode=development_mode)
        if problem:
            raise ConfigError(f"{where}: jku {url!r} {problem}")
    algorithms = _str_list(entry, "algorithms", where) or DEFAULT_ALGORITHMS
    bad = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
    if bad:
        raise ConfigError(
            f"{where}: algorithm(s) {', '.join(bad)} not allowed; CDS Hooks forbids 'none' and symmetric (HS*) "
            f"algorithms; choose from {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}"
        )
    keys = None
    if entry.get("jwks_file") is not None:
        path = Path(str(entry["jwks_file"]))
        path = path if path.is_absolute() else base_dir / path
        try:
            keys = parse_jwks(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{where}: jwks_file {path}: {exc}") from None
        if not keys:
            raise ConfigError(f"{where}: jwks_file {path} holds no usable signing key with a 'kid'")
    if keys is None and not jku:
        raise ConfigError(f"{where}: give 'jwks_file' or a 'jku' allow-list, or both")
    return Issuer(
        iss=iss,
        jku_allowlist=jku,
        keys=keys,
        algorithms=tuple(algorithms),
        tenants=_str_list(entry, "tenants", where),
        note=str(entry.get("note", "")),
    )


def load_issuers(path: str, *, development_mode: bool = False) -> dict[str, Issuer]:
    """All registered issuers by `iss`; ConfigError on anything doubtful (fail at start, not per call)."""
    file = Path(path)
    try:
        data = yamlfiles.safe_load(file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read JWT issuers file {path}: {exc}") from None
    entries = data.get("issuers") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"JWT issuers file {path} must hold 'issuers:' with a list")
    issuers: dict[str, Issuer] = {}
    for i, entry in enumerate(entries):
        issuer = parse_issuer(entry, file.parent, development_mode=development_mode, where=f"{path} issuers[{i}]")
        if issuer.iss in issuers:
            raise ConfigError(f"{path}: issuer {issuer.iss!r} registered twice")
        issuers[issuer.iss] = issuer
    return issuers
