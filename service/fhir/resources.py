"""The FHIR data of one hook call after prefetch/fetch and parsing: input to the coding facts."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.resource import Resource


@dataclass(frozen=True)
class ResourceIssue:
    """A resource that could not be used as sent (skipped or repaired)."""

    location: str  # "draftOrders", "prefetch:device", "fhirServer:Procedure?patient=..."
    resource_type: str | None
    resource_id: str | None
    problem: str  # precise, PHI-free description
    skipped: bool = True


@dataclass
class VisitResources:
    """Parsed R4B resources of one visit.

    ``draft_orders`` are the orders being signed (order-sign) or empty (encounter close);
    ``resources`` is everything else, de-duplicated by type/id.
    """

    context: dict[str, Any]
    hook: str
    draft_orders: list[Resource] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    issues: list[ResourceIssue] = field(default_factory=list)
    # prefetch keys or queries whose data could not be had (degraded but honest output)
    unavailable: list[str] = field(default_factory=list)

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources if r.get_resource_type() in types]

    def orders_of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.draft_orders if r.get_resource_type() in types]

    def all(self) -> Iterator[Resource]:
        yield from self.draft_orders
        yield from self.resources

    def by_reference(self, reference: str | None) -> Resource | None:
        if not reference:
            return None
        tail = reference.rstrip("/").split("/")
        if len(tail) < 2:
            return None
        rtype, rid = tail[-2], tail[-1]
        for r in self.all():
            if r.get_resource_type() == rtype and r.id == rid:
                return r
        return None

    def extend(self, items: Iterable[Resource]) -> None:
        seen = {(r.get_resource_type(), r.id) for r in self.resources if r.id}
        for r in items:
            key = (r.get_resource_type(), r.id)
            if r.id and key in seen:
                continue
            seen.add(key)
            self.resources.append(r)
