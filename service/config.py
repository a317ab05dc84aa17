"""Settings: defaults, then an optional YAML file, then environment variables.

Every setting has one name. In a YAML file (``PUMPCDS_CONFIG=path``) it is the field name;
in the environment it is ``PUMPCDS_`` + the upper-cased field name, except the two
conventional ``DATABASE_URL`` and ``REDIS_URL``. Lists in the environment are comma-separated.
"""
from __future__ import annotations

import dataclasses
import difflib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from . import yamlfiles
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
    fhir_time_budget_ms: int = 1500  # cold first call on a busy 2-core machine: ~80-500 ms loopback (docs/benchmarks.md)
    fhir_connect_timeout_ms: int = 100
    fhir_max_bundle_pages: int = 5
    max_body_bytes: int = 2 * 1024 * 1024
    # Deepest JSON nesting accepted in a request body or a FHIR resource (levels; see jsondepth.py).
    max_json_depth: int = DEFAULT_MAX_DEPTH
    max_prefetch_resources: int = 2000
    # How far FHIR resources are validated with the R4 models beyond the type checks of the elements
    # pumpcds reads: off | relevant (the resources the facts use) | strict (every resource of a type
    # the facts read). docs/architecture.md, "Reading FHIR", has the measurements behind the default.
    fhir_validation: str = "off"
    database_url: str = "sqlite:///instance/pumpcds.db"
    redis_url: str = ""
    # Database limits: no call waits on the database longer than these (docs/deployment.md,
    # "Failure behaviour"). PostgreSQL: connect timeout (whole seconds, libpq's minimum is 2) and statement timeout, the
    # latter also enforced client-side; SQLite: how long a writer waits for another's lock.
    database_connect_timeout_s: int = 2
    database_statement_timeout_ms: int = 1000
    sqlite_busy_timeout_ms: int = 5000
    # Redis (jti replay store): connect and answer timeout.
    redis_timeout_ms: int = 500
    # Hook-call audit records waiting for the database (written in the background); beyond this
    # many, records are dropped, counted in pumpcds_audit_records_dropped_total and logged.
    audit_queue_size: int = 10000
    # Store an audit row also for calls the relevance gate answered with nothing (no pump in the
    # order or the visit): off, as order-sign fires for every order a hospital signs; those calls
    # are counted in pumpcds_hook_calls_total{gate=...} and logged, one line each, either way.
    audit_unrelated_calls: bool = False
    encounter_close_hook: str = DEFAULT_ENCOUNTER_CLOSE_HOOK
    # Payer policy profile used when the visit's Coverage matches no configured payer.
    default_payer_profile: str = "conservative"
    # Optional SMART documentation app launched from documentation cards.
    documentation_app_url: str = ""
    # Good-practice documentation elements this site wants on a card too (docs/cards.md, alert
    # policy), e.g. doc-indication,doc-post-change-verification. Empty: only required elements.
    documentation_prompts: tuple[str, ...] = ()
    # Card wording and page templates (cards/README.md). Empty: the repository's cards/ next to
    # the service package, else ./cards (the container sets /app/cards).
    cards_dir: str = ""
    # CMS NCCI PTP / MUE / MPFS (PPRRVU) quarterly files (PTP: comma-separated parts). Empty: the
    # bundled SYNTHETIC test tables are used (invented values; cards then say "test data"), which
    # production mode refuses unless allow_synthetic_cms is true. `pumpcds cms check` shows what loads.
    ncci_ptp_path: str = ""
    ncci_mue_path: str = ""
    mpfs_rvu_path: str = ""
    allow_synthetic_cms: bool = False
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

    def with_overrides(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **_coerce_all(changes))


_ENV_ALIASES = {"database_url": "DATABASE_URL", "redis_url": "REDIS_URL"}
# PUMPCDS_* variables read by something other than Settings (deploy/gunicorn.conf.py, this module).
OTHER_ENV = frozenset({
    "PUMPCDS_CONFIG", "PUMPCDS_BIND", "PUMPCDS_THREADS", "PUMPCDS_WORKER_TIMEOUT_S", "PUMPCDS_ACCESS_LOG",
    "PUMPCDS_GUNICORN_LOG_LEVEL",
})

log = logging.getLogger("pumpcds.config")


def env_names() -> dict[str, str]:
    """Environment variable name -> setting name."""
    return {_ENV_ALIASES.get(f.name, "PUMPCDS_" + f.name.upper()): f.name for f in fields(Settings)}


def _check_env_names(environ: Mapping[str, str]) -> None:
    """A PUMPCDS_* variable nobody reads is a typo that would silently leave a default in force:
    one close to a known name stops the start ("did you mean"), any other is logged."""
    known = set(env_names()) | OTHER_ENV
    for name in sorted(environ):
        if not name.startswith("PUMPCDS_") or name in known:
            continue
        bare = name.removeprefix("PUMPCDS_")
        if bare in _ENV_ALIASES.values():
            raise ConfigError(f"environment variable {name} is not read; did you mean {bare}?")
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
        if close:
            raise ConfigError(f"unknown environment variable {name}; did you mean {close[0]}?")
        log.warning("environment variable %s is not a pumpcds setting and is ignored", name)


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
        hints = [f"{u} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(u, sorted(known), n=1, cutoff=0.8))
                 else u for u in unknown]
        raise ConfigError(f"unknown setting(s): {', '.join(hints)}")
    return {k: _coerce(k, v) for k, v in values.items()}


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings: defaults < file < environment < explicit overrides."""
    environ = os.environ if environ is None else environ
    _check_env_names(environ)
    values: dict[str, Any] = {}
    path = path or environ.get("PUMPCDS_CONFIG")
    if path:
        try:
            loaded = yamlfiles.safe_load(Path(path).read_text()) or {}
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
    from .fhir.validate import MODES

    if settings.fhir_validation not in MODES:
        raise ConfigError(f"fhir_validation must be one of {', '.join(MODES)}, got {settings.fhir_validation!r}")
    hook = settings.encounter_close_hook
    if "." not in hook or hook.startswith(".") or hook.endswith("."):
        raise ConfigError(
            f"encounter_close_hook {hook!r} must be a reverse-domain name (e.g. org.example.encounter-close)"
        )
    if not settings.public_base_url.startswith(("http://", "https://")):
        raise ConfigError("public_base_url must be an absolute http(s) URL")
    if settings.fhir_time_budget_ms <= 0 or settings.max_body_bytes <= 0:
        raise ConfigError("time budget and body size limit must be positive")
    from .store.engine import DatabaseUrlError, parse_database_url

    try:
        parse_database_url(settings.database_url)
    except DatabaseUrlError as exc:
        raise ConfigError(str(exc)) from None
    if settings.redis_url and not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
    for name in ("database_connect_timeout_s", "database_statement_timeout_ms", "redis_timeout_ms",
                 "audit_queue_size"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name} must be positive")
