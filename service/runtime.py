"""Everything one app instance builds once at start: settings, services, rules, validators, clients."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from .cdshooks import validation
from .cdshooks.cards import CardBuilder
from .cdshooks.services import ServiceDefinition, build_services
from .cdshooks.validation import HookRequest
from .coding.engine import CodingEngine
from .config import Settings
from .fhir import parse
from .fhir.client import Budget, FhirClient
from .security.allowlist import fhir_server_allowed
from .store.audit_queue import AuditQueue
from .store.db import Store
from .store.engine import DbTimeouts

AuditSink = Callable[[dict[str, Any]], None]


def is_unrelated(record: dict[str, Any]) -> bool:
    """A call answered 200 with no cards because nothing in it was about a pump (gate "none",
    "none-nothing-to-judge", "none-after-fetch")."""
    return record.get("status") == 200 and not record.get("card_uuids") and str(record.get("gate") or "").startswith("none")


def _skipping_unrelated(queue: AuditQueue) -> AuditSink:
    """The audit store's sink without the gate's empty answers: nothing to trace feedback to, and a
    database row per signed order of a hospital would be the service's largest cost on them."""
    def store(record: dict[str, Any]) -> None:
        if not is_unrelated(record):
            queue.submit(record)
    return store


@dataclass
class Runtime:
    settings: Settings
    services: dict[str, ServiceDefinition]
    engine: CodingEngine
    cards: CardBuilder
    http: requests.Session
    audit_sinks: list[AuditSink] = field(default_factory=list)
    # audit and feedback database; None only for runtimes built without storage
    store: Store | None = None
    # hook calls' audit records on their way to `store`, written off the request path
    audit_queue: AuditQueue | None = None

    @classmethod
    def build(cls, settings: Settings, *, with_store: bool = True) -> Runtime:
        validation.warm_up()
        parse.warm_up()
        session = requests.Session()
        session.trust_env = False  # never route patient data through an ambient proxy
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=16, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        engine = CodingEngine.load(settings)  # rules and code table loaded once, here; the cards use the same
        runtime = cls(
            settings=settings,
            services=build_services(settings),
            engine=engine,
            cards=CardBuilder.load(settings, engine.rules.book, engine.rules.codes),
            http=session,
        )
        if with_store:
            # schema created or migrated now; if the database is down the service still starts
            # (hooks answer, /readyz says why it is not ready) and the store retries later
            runtime.store = Store(settings.database_url, timeouts=DbTimeouts.from_settings(settings))
            runtime.store.ensure_schema(force=True)
            # the process that builds the app (gunicorn's master with preload_app) keeps no
            # connection: each worker opens its own after the fork (an in-memory database lives
            # only in its one connection, so it is kept)
            if not runtime.store.in_memory:
                runtime.store.engine.dispose()
            runtime.audit_queue = AuditQueue(runtime.store, capacity=settings.audit_queue_size)
            runtime.audit_sinks.append(runtime.audit_queue if settings.audit_unrelated_calls
                                       else _skipping_unrelated(runtime.audit_queue))
        return runtime

    def close(self, timeout_s: float | None = None) -> None:
        """Clean shutdown: store every queued audit record (bounded), then drop the connections."""
        if self.audit_queue is not None:
            self.audit_queue.close(timeout_s)
        if self.store is not None:
            self.store.dispose()

    def fhir_server_allowed(self, url: str) -> bool:
        s = self.settings
        return fhir_server_allowed(url, s.fhir_server_allowlist, development_mode=s.development_mode)

    def client_for(self, request: HookRequest, budget: Budget) -> FhirClient | None:
        if not request.fhir_server or not self.fhir_server_allowed(request.fhir_server):
            return None
        s = self.settings
        return FhirClient(
            request.fhir_server,
            request.access_token,
            budget,
            self.http,
            connect_timeout_s=s.fhir_connect_timeout_ms / 1000,
            max_pages=s.fhir_max_bundle_pages,
            max_resources=s.max_prefetch_resources,
        )
