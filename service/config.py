"""Settings: defaults, then an optional YAML file, then environment variables.

Every setting has one name. In a YAML file (``PUMPCDS_CONFIG=path``) it is the field name;
in the environment it is ``PUMPCDS_`` + the upper-cased field name, except the two
conventional ``DATABASE_URL`` and ``REDIS_URL``. Lists in the environment are comma-separated.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from .jsondepth import DEFAULT_MAX_DEPTH, HARD_MAX_DEPTH

DEFAULT_ENCOUNTER_CLOSE_HOOK = "org.pumpcds.encounter-close"


class ConfigError(ValueError):
    """A setting has a value the service cannot run with."""


@dataclass(frozen=True)
class Settings:
    # Public URL the EHR calls; used for JWT `aud`, links in cards and OpenAPI servers.
    public_base_url: str = "http://localhost:8080"
    # Development mode: no JWT check, plain-http FHIR servers allowed. Never in production.
    development_mode: bool = True
    cors_origins: tuple[str, ...] = (
        "https://sandbox.cds-hooks.org",
        "http://localhost:3000",
        "http://localhost:8080",
        "http://127.0.0.1:8080",
    )
    # fhirServer values the service may contact: scheme://host[:port][/path-prefix]
    fhir_server_allowlist: tuple[str, ...] = (
        "https://launch.smarthealthit.org/",
        "http://127.0.0.1",
        "http://localhost",
    )
    fhir_time_budget_ms: int = 300
    fhir_connect_timeout_ms: int = 100
    fhir_max_bundle_pages: int = 5
    max_body_bytes: int = 2 * 1024 * 1024
    # Deepest JSON nesting accepted in a request body or a FHIR resource (levels; see jsondepth.py).
    max_json_depth: int = DEFAULT_MAX_DEPTH
    max_prefetch_resources: int = 2000
    database_url: str = "sqlite:///instance/pumpcds.db"
    redis_url: str = ""
    encounter_close_hook: str = DEFAULT_ENCOUNTER_CLOSE_HOOK
    # Payer policy profile used when the visit's Coverage matches no configured payer.
    default_payer_profile: str = "conservative"
    # Optional SMART documentation app launched from documentation cards.
    documentation_app_url: str = ""
    # Card wording and page templates (cards/README.md). Empty: the repository's cards/ next to
    # the service package, else ./cards (the container sets /app/cards).
    cards_dir: str = ""
    # CMS NCCI/MUE/MPFS quarterly files; empty means the bundled synthetic test files are not used.
    ncci_ptp_path: str = ""
    ncci_mue_path: str = ""
    mpfs_rvu_path: str = ""
    # Licensed CPT descriptor file (AMA); without it cards use the project's own summaries.
    cpt_descriptor_path: str = ""
    # Site mapping of local codes onto the project's CodeSystem (YAML).
    site_mapping_path: str = ""
    # JWT client registrations (YAML file of issuers); see docs/security.md.
    jwt_issuers_path: str = ""
    jwt_max_lifetime_s: int = 3600
    jwt_clock_skew_s: int = 60
    # jti replay store: auto (Redis if REDIS_URL, else the database outside development mode,
    # else in-process memory) | memory | database | redis
    jwt_replay_store: str = "auto"
    jwt_jku_timeout_ms: int = 2000  # connect and read timeout for fetching a client's JWKS
    jwt_jwks_cache_s: int = 3600  # how long keys fetched from a jku are trusted without refetch
    jwt_jwks_refresh_cooldown_s: int = 30  # at most one refetch per jku in this time on an unknown kid
    log_level: str = "INFO"
    # Benchmarks only (bench/, issue 6): a bare endpoint at /benchmark/baseline answering a static
    # response of benchmark_baseline_bytes bytes. Never on in production.
    benchmark_baseline: bool = False
    benchmark_baseline_bytes: int = 4096

    def with_overrides(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **_coerce_all(changes))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


_ENV_ALIASES = {"database_url": "DATABASE_URL", "redis_url": "REDIS_URL"}


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f for f in fields(Settings)}[name].type
    if value is None:
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
    if kind.startswith("tuple"):
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, (list, tuple)):
            return tuple(str(v) for v in value)
        raise ConfigError(f"{name}: expected a list, got {value!r}")
    return str(value)


def _coerce_all(values: Mapping[str, Any]) -> dict[str, Any]:
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    return {k: _coerce(k, v) for k, v in values.items()}


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings: defaults < file < environment < explicit overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = path or environ.get("PUMPCDS_CONFIG")
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping")
        values.update(loaded)
    for f in fields(Settings):
        env_name = _ENV_ALIASES.get(f.name, "PUMPCDS_" + f.name.upper())
        if env_name in environ:
            values[f.name] = environ[env_name]
    values.update(overrides)
    settings = Settings(**_coerce_all(values))
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    if not 8 <= settings.max_json_depth <= HARD_MAX_DEPTH:
        raise ConfigError(f"max_json_depth must be between 8 and {HARD_MAX_DEPTH}, got {settings.max_json_depth}")
    hook = settings.encounter_close_hook
    if "." not in hook or hook.startswith(".") or hook.endswith("."):
        raise ConfigError(
            f"encounter_close_hook {hook!r} must be a reverse-domain name (e.g. org.example.encounter-close)"
        )
    if not settings.public_base_url.startswith(("http://", "https://")):
        raise ConfigError("public_base_url must be an absolute http(s) URL")
    if settings.fhir_time_budget_ms <= 0 or settings.max_body_bytes <= 0:
        raise ConfigError("time budget and body size limit must be positive")
