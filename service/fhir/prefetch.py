"""Collect the visit's FHIR data: what the client prefetched, the rest from `fhirServer`.

Per prefetch key (CDS Hooks 2.0 §Prefetch):
- present with data -> used (searchset pages followed through `next` up to the cap);
- `null` -> the client found no data; nothing is fetched;
- missing, or an OperationOutcome (the client's own fetch failed) -> fetched from fhirServer.
Required data that neither path supplies -> 412. Optional data that cannot be had is listed
in `VisitResources.unavailable`, so cards can say what was not checked. Errors are domain
errors (errors.py); the HTTP edge maps them to 412/413.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from ..jsondepth import DEFAULT_MAX_DEPTH
from . import validate
from .client import FhirClient, FhirFetchError
from .errors import PrefetchMissing, TooManyResources
from .jsonview import items, reference
from .parse import bundle_entries, bundle_problem, parse_many
from .resources import VisitResources
from .validate import DEFAULT_VALIDATION, Validation


class PrefetchTemplate(Protocol):
    """A service's prefetch template, as far as gathering needs it (cdshooks.services.PrefetchTemplate)."""

    @property
    def key(self) -> str: ...
    @property
    def query(self) -> str: ...
    @property
    def required(self) -> bool: ...
    @property
    def types(self) -> tuple[str, ...]: ...
    @property
    def report_if_unavailable(self) -> bool: ...


class Service(Protocol):
    @property
    def prefetch(self) -> Sequence[PrefetchTemplate]: ...
    @property
    def resource_context(self) -> tuple[str, ...]: ...
    def template(self, key: str) -> PrefetchTemplate | None: ...


class Request(Protocol):
    """A checked hook request (cdshooks.validation.HookRequest)."""

    @property
    def hook(self) -> str: ...
    @property
    def context(self) -> dict[str, Any]: ...
    @property
    def prefetch(self) -> dict[str, Any] | None: ...
    @property
    def service(self) -> Service: ...

_TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


def render_template(query: str, context: dict[str, Any]) -> str | None:
    """Fill `{{context.x}}` and user tokens; None when a token has no value in this call."""
    user_type, _, user_id = str(context.get("userId", "")).partition("/")

    def value(token: str) -> str | None:
        if token.startswith("context."):
            v = context.get(token[len("context."):])
            return str(v) if isinstance(v, (str, int)) and str(v) else None
        if token in _USER_TOKENS:
            return user_id if user_type == _USER_TOKENS[token] and user_id else None
        return None

    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        v = value(m.group(1))
        if v is None:
            missing = True
            return ""
        return quote(str(v), safe="")

    rendered = _TOKEN.sub(sub, query)
    return None if missing else rendered


@dataclass
class _KeyResult:
    key: str
    raw: list[Any]
    problem: str | None = None  # why the data could not be had
    truncated: bool = False
    note: str | None = None  # data used, but incomplete for this reason


def _is_operation_outcome(value: Any) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def _unusable(value: Any) -> str | None:
    """Why a prefetch value cannot be used as sent (it is then fetched as if missing), or None."""
    if _is_operation_outcome(value):
        return "the client's prefetch failed"
    problem = bundle_problem(value)
    return f"the client's prefetch is {problem}" if problem else None


def _count(value: Any) -> int:
    if isinstance(value, dict) and value.get("resourceType") == "Bundle":
        entries = value.get("entry")
        return len(entries) if isinstance(entries, list) else 0
    return 1


def _wrong_type(raw: list[Any], expected: tuple[str, ...]) -> str | None:
    """The type the server sent when none of its answer is of the expected types (None if fine)."""
    if not expected or not raw:
        return None
    types = [r.get("resourceType") for r in raw if isinstance(r, dict)]
    if any(t in expected for t in types):
        return None
    found = next((t for t in types if isinstance(t, str) and t != "OperationOutcome"), None)
    return f"a {found}" if found else None


class PrefetchResolver:
    def __init__(self, max_resources: int, max_depth: int = DEFAULT_MAX_DEPTH,
                 validation: str = DEFAULT_VALIDATION) -> None:
        self._max_resources = max_resources
        self._max_depth = max_depth
        self._validation = Validation(validation)

    def _read(self, raw: list[Any], location: str, encounter_id: str | None = None) -> tuple[list[Any], list[Any]]:
        return parse_many(raw, location, encounter_id, self._max_depth, self._validation)

    def gather(
        self,
        request: Request,
        client: FhirClient | None,
        no_client_reason: str = "no fhirServer in the request",
        relevant: Callable[[list[Any], set[str]], bool] | None = None,
    ) -> VisitResources | None:
        """The visit's resources; None when `relevant` (the relevance gate, for a request that
        could not be judged on what it carried; given what was gathered and the keys that could
        not be had) says no pump visit is involved."""
        visit = VisitResources(context=request.context, hook=request.hook)
        if self._validation is Validation.RELEVANT:
            visit.validator = validate.validator
        prefetch = request.prefetch or {}
        total = sum(_count(v) for v in prefetch.values() if v is not None)
        total += sum(_count(request.context.get(k) or {}) for k in request.service.resource_context)
        if total > self._max_resources:
            raise TooManyResources(total, self._max_resources)

        for ctx_key in request.service.resource_context:
            orders, issues = self._read(bundle_entries(request.context.get(ctx_key) or {}), ctx_key)
            visit.add_orders(orders, ctx_key)
            visit.issues.extend(issues)

        encounter_id = request.context.get("encounterId")
        encounter_id = encounter_id.strip() if isinstance(encounter_id, str) and encounter_id.strip() else None
        to_fetch: list[tuple[PrefetchTemplate, str]] = []
        results: list[_KeyResult] = []
        for template in request.service.prefetch:
            sent = prefetch.get(template.key, ...)
            if sent is None:
                continue  # the client looked and found nothing
            unusable = None if sent is ... else _unusable(sent)
            if sent is not ... and unusable is None:
                results.append(self._from_prefetch(template.key, sent, client, no_client_reason))
                continue
            query = render_template(template.query, request.context)
            if query is None:
                continue  # the template does not apply to this call (e.g. no encounterId)
            if client is None:
                why = unusable or "not in prefetch"
                results.append(_KeyResult(template.key, [], f"{why}, and it cannot be fetched: {no_client_reason}"))
                continue
            to_fetch.append((template, query))

        if to_fetch and client is not None:
            results.extend(self._fetch_all(client, to_fetch))
        if relevant is not None:
            drafts = [request.context.get(k) for k in request.service.resource_context]
            raw = [r for r in drafts if isinstance(r, dict)] + [x for res in results for x in res.raw]
            if not relevant(raw, {r.key for r in results if r.problem}):
                return None

        missing: list[str] = []
        for result in results:
            found_template = request.service.template(result.key)
            if result.problem:
                if found_template is not None and found_template.required:
                    missing.append(f"{result.key}: {result.problem}")
                elif found_template is not None and not found_template.report_if_unavailable:
                    continue
                else:
                    visit.unavailable.append(f"{result.key}: {result.problem}")
                continue
            if result.truncated:
                visit.unavailable.append(f"{result.key}: more pages than the configured cap; later pages not read")
            if result.note:
                visit.unavailable.append(f"{result.key}: {result.note}")
            location = f"prefetch:{result.key}"
            found, issues = self._read(result.raw, location, encounter_id)
            visit.extend(found, location)
            visit.issues.extend(issues)
        if missing:
            raise PrefetchMissing(missing)
        if client is not None:
            self._resolve_references(visit, client)
        return visit

    def _from_prefetch(
        self, key: str, sent: dict[str, Any], client: FhirClient | None, no_client_reason: str
    ) -> _KeyResult:
        if sent.get("resourceType") != "Bundle":
            return _KeyResult(key, [sent])
        has_next = any(isinstance(link, dict) and link.get("relation") == "next" for link in sent.get("link") or [])
        if not has_next:
            return _KeyResult(key, bundle_entries(sent))
        if client is None:
            return _KeyResult(key, bundle_entries(sent), note=f"later pages not read: {no_client_reason}")
        try:
            raw, truncated = client.follow_pages(sent, already_fetched=1)
        except FhirFetchError as exc:
            return _KeyResult(key, bundle_entries(sent), note=f"later pages not read: {exc}")
        return _KeyResult(key, raw, truncated=truncated)

    def _fetch_all(self, client: FhirClient, jobs: list[tuple[PrefetchTemplate, str]]) -> list[_KeyResult]:
        def fetch(job: tuple[PrefetchTemplate, str]) -> _KeyResult:
            template, query = job
            try:
                raw, truncated = client.search(query)
            except FhirFetchError as exc:
                return _KeyResult(template.key, [], str(exc))
            wrong = _wrong_type(raw, template.types)
            if wrong:  # a wrong-type answer is a failed fetch, never "nothing found"
                return _KeyResult(template.key, [], f"FHIR server answered with {wrong} instead of {'/'.join(template.types)}")
            return _KeyResult(template.key, raw, truncated=truncated)

        if len(jobs) == 1:
            return [fetch(jobs[0])]
        with ThreadPoolExecutor(max_workers=min(6, len(jobs))) as pool:
            return list(pool.map(fetch, jobs))

    def _resolve_references(self, visit: VisitResources, client: FhirClient) -> None:
        """Fetch performers and devices the Procedures point at but the prefetch did not carry."""
        wanted: list[str | None] = []
        for proc in visit.of_type("Procedure"):
            for performer in items(proc.get("performer")):
                wanted.extend((reference(performer.get("actor")), reference(performer.get("onBehalfOf"))))
            wanted.extend(reference(focal.get("manipulated")) for focal in items(proc.get("focalDevice")))
        for role in visit.of_type("PractitionerRole"):
            wanted.append(reference(role.get("practitioner")))
        todo = []
        for ref in dict.fromkeys(r for r in wanted if r):
            parts = ref.split("/")
            if len(parts) != 2 or parts[0] not in {"Practitioner", "PractitionerRole", "Device"}:
                continue
            if visit.by_reference(ref) is None:
                todo.append(ref)
        for ref in todo[:10]:
            try:
                raw = client.get_json(ref)
            except FhirFetchError as exc:
                visit.unavailable.append(f"{ref}: {exc}")
                continue
            if raw.get("resourceType") != ref.split("/")[0]:
                visit.unavailable.append(f"{ref}: FHIR server answered with a {raw.get('resourceType')} instead of it")
                continue
            location = f"fhirServer:{ref.split('/')[0]}"
            found, issues = self._read([raw], location)
            visit.extend(found, location)
            visit.issues.extend(issues)
