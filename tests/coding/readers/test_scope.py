"""The visit's scope: its date of service and encounter."""
from __future__ import annotations

import datetime as dt

from service.coding.readers.scope import Scope, date_of_service


def always(_: object) -> bool:
    return True


def test_date_of_service_order_encounter_procedure() -> None:
    order = {"resourceType": "ServiceRequest", "occurrenceDateTime": "2026-11", "authoredOn": "2026-11-19T10:00:00Z"}
    enc = {"resourceType": "Encounter", "id": "e1", "period": {"start": "2026-11-18T09:00:00Z"}}
    procs = [{"resourceType": "Procedure", "performedDateTime": "2026-11-17T09:00:00Z"},
             {"resourceType": "Procedure", "performedDateTime": "2026-11-21T09:00:00Z", "encounter": {"reference": "Encounter/x"}}]
    assert date_of_service([order], [enc], procs, "e1", always) == dt.date(2026, 11, 19)  # a partial date is skipped
    assert date_of_service([], [enc], procs, "e1", always) == dt.date(2026, 11, 18)
    assert date_of_service([], [enc], procs, "e2", always) == dt.date(2026, 11, 17)  # other encounter's procedure left out
    assert date_of_service([], [enc], procs, "e1", lambda r: r is not enc) == dt.date(2026, 11, 17)
    assert date_of_service([{"occurrencePeriod": {"start": "2026-11-16"}}], [], [], None, always) == dt.date(2026, 11, 16)


def test_scope_holds_by_encounter_else_by_day() -> None:
    scope = Scope("e1", dt.date(2026, 11, 20))
    assert scope.holds({"reference": "Encounter/e1"}, dt.date(2020, 1, 1))
    assert not scope.holds({"reference": "Encounter/e0"}, dt.date(2026, 11, 20))
    assert scope.holds(None, None) and scope.holds(None, dt.date(2026, 11, 20)) and not scope.holds(None, dt.date(2026, 11, 21))
