"""What can stop the FHIR data of a call from being gathered, in domain terms. The HTTP edge
(service/cdshooks/invoke.py) answers each with its status code; nothing below it knows HTTP."""
from __future__ import annotations


class FhirDataError(Exception):
    """The visit's FHIR data cannot be used; `field` names the part of the request at fault."""

    field = "prefetch"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TooManyResources(FhirDataError):
    """The request carries more resources (prefetch and draft orders) than the service accepts."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"the request carries {count} resources (prefetch and draft orders); "
                         f"this service accepts at most {limit}")
        self.count = count
        self.limit = limit


class PrefetchMissing(FhirDataError):
    """Required data could be had neither from prefetch nor from the FHIR server (one line per key)."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__("data the service needs could be had neither from prefetch nor from the FHIR server")
        self.missing = missing
