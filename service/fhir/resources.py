"""The FHIR data of one hook call after prefetch/fetch and reading in: input to the coding facts.

Resources are plain FHIR R4 JSON objects (dicts as orjson decodes them), normalised and checked
by service/fhir/parse.py; the visit facts read them through service/fhir/jsonview.py.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
# full R4 validation of one resource where it came from: (usable, what was found)
Validator = Callable[[JSON, str], tuple[bool, list["ResourceIssue"]]]


@dataclass(frozen=True)
class ResourceIssue:
    """A resource that could not be used as sent (skipped or repaired)."""

    location: str  # "draftOrders", "prefetch:device", "fhirServer:Procedure?patient=..."
    resource_type: str | None
    resource_id: str | None
    problem: str  # precise, PHI-free description
    skipped: bool = True


def _key(resource: JSON) -> tuple[Any, Any]:
    return resource.get("resourceType"), resource.get("id")


@dataclass
class VisitResources:
    """The resources of one visit, as JSON.

    ``draft_orders`` are the orders being signed (order-sign) or empty (encounter close);
    ``resources`` is everything else, de-duplicated by type/id. ``validator`` is set when
    `fhir_validation` is `relevant`: the reader then validates each resource it takes a fact
    from (`confirm`) and leaves out, and reports, one that fails.
    """

    context: dict[str, Any]
    hook: str
    draft_orders: list[JSON] = field(default_factory=list)
    resources: list[JSON] = field(default_factory=list)
    issues: list[ResourceIssue] = field(default_factory=list)
    # prefetch keys or queries whose data could not be had (degraded but honest output)
    unavailable: list[str] = field(default_factory=list)
    validator: Validator | None = None
    # where each resource came from (by object identity), for the issue of a failed `confirm`
    origins: dict[int, str] = field(default_factory=dict, repr=False)
    _confirmed: dict[int, bool] = field(default_factory=dict, repr=False)

    def of_type(self, *types: str) -> list[JSON]:
        return [r for r in self.resources if r.get("resourceType") in types]

    def orders_of_type(self, *types: str) -> list[JSON]:
        return [r for r in self.draft_orders if r.get("resourceType") in types]

    def all(self) -> Iterator[JSON]:
        yield from self.draft_orders
        yield from self.resources

    def by_reference(self, reference: str | None) -> JSON | None:
        if not reference:
            return None
        tail = reference.rstrip("/").split("/")
        if len(tail) < 2:
            return None
        wanted = (tail[-2], tail[-1])
        return next((r for r in self.all() if _key(r) == wanted), None)

    def extend(self, items: Iterable[JSON], location: str | None = None) -> None:
        seen = {_key(r) for r in self.resources if r.get("id")}
        for r in items:
            key = _key(r)
            if r.get("id") and key in seen:
                continue
            seen.add(key)
            self.resources.append(r)
            if location:
                self.origins[id(r)] = location

    def add_orders(self, items: Iterable[JSON], location: str) -> None:
        for r in items:
            self.draft_orders.append(r)
            self.origins[id(r)] = location

    def confirm(self, resource: JSON) -> bool:
        """Whether the facts may use this resource: always, unless a `validator` is set and finds
        it invalid R4 (then it is reported once, in `issues`). Validated at most once."""
        if self.validator is None:
            return True
        known = self._confirmed.get(id(resource))
        if known is not None:
            return known
        ok, found = self.validator(resource, self.origins.get(id(resource), "prefetch"))
        self._confirmed[id(resource)] = ok
        self.issues.extend(found)
        return ok
