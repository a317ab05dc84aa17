"""Coverage reader: the payer of active coverages."""
from __future__ import annotations

from service.coding.readers import coverage

from .conftest import observed


def test_active_coverages_name_the_payer(notes) -> None:
    active = {"resourceType": "Coverage", "id": "c1", "status": "active",
              "payor": [{"display": "Medicare Part B", "identifier": {"system": "urn:payer", "value": "00831"}}]}
    cancelled = {"resourceType": "Coverage", "id": "c2", "status": "cancelled", "payor": [{"display": "Old plan"}]}
    assert coverage.payer([active, cancelled], notes) == (("urn:payer|00831",), ("Medicare Part B",))
    assert observed(notes, "payer") == ["active insurance coverage"]
    assert notes.evidence["payer"][0].reference == "Coverage/c1"
