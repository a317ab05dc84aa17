"""Which resources belong to the visit: the date of service and the encounter (docs/fhir-input.md,
section 2). A resource naming an encounter belongs when it is this visit's; one naming none belongs
when it is of the date of service or has no date."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...fhir.jsonview import JSON, child, day, first_day, reference_id, resource_id


@dataclass(frozen=True)
class Scope:
    encounter_id: str | None
    date_of_service: dt.date

    def holds(self, encounter_ref: Any, when: dt.date | None) -> bool:
        ref_id = reference_id(encounter_ref)
        if self.encounter_id and ref_id:
            return ref_id == self.encounter_id
        return when is None or when == self.date_of_service

    def contains(self, resource: JSON, encounter_element: str, *day_elements: str) -> bool:
        """`holds` for a resource: its encounter, else the day of the first of these elements that
        is set (read only when the encounter does not decide)."""
        ref_id = reference_id(resource.get(encounter_element))
        if self.encounter_id and ref_id:
            return ref_id == self.encounter_id
        when = first_day(resource, *day_elements)
        return when is None or when == self.date_of_service


def date_of_service(drafts: list[JSON], encounters: list[JSON], procedures: list[JSON],
                    encounter_id: str | None, usable: Callable[[JSON], bool]) -> dt.date:
    """The draft order's date, else the visit encounter's start, else the latest procedure of the
    visit, else today."""
    for r in drafts:
        for name in ("occurrenceDateTime", "performedDateTime", "authoredOn"):
            found = day(r.get(name))
            if found:
                return found
        found = day((child(r, "occurrencePeriod") or {}).get("start"))
        if found:
            return found
    for enc in encounters:
        start = day((child(enc, "period") or {}).get("start"))
        if start and (encounter_id is None or resource_id(enc) == encounter_id) and usable(enc):
            return start
    days = []
    for p in procedures:
        if encounter_id and reference_id(p.get("encounter")) not in (None, encounter_id):
            continue
        performed = first_day(p, "performedDateTime", "performedPeriod")
        if performed and usable(p):
            days.append(performed)
    return max(days) if days else dt.datetime.now(dt.UTC).date()
