"""Client-facing errors: every one becomes a FHIR OperationOutcome with the exact field at fault."""
from __future__ import annotations

from typing import Any

# FHIR issue-type codes (http://hl7.org/fhir/issue-type) by HTTP status
_ISSUE_CODE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    412: "incomplete",
    413: "too-long",
    415: "not-supported",
    429: "throttled",
    500: "exception",
    503: "transient",
}


class ApiError(Exception):
    """An answer other than 200, with a message precise enough to fix the request."""

    def __init__(self, status: int, message: str, field: str | None = None, *, missing: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.missing = missing or []

    def body(self) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": "error",
            "code": _ISSUE_CODE.get(self.status, "processing"),
            "diagnostics": self.message,
        }
        if self.field:
            issue["expression"] = [self.field]
        issues = [issue]
        for what in self.missing:
            issues.append({"severity": "error", "code": "not-found", "diagnostics": what})
        return {"resourceType": "OperationOutcome", "issue": issues}


def operation_outcome(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    return ApiError(status, message, field).body()
