"""Read-only FHIR client for the prefetch fallback: one time budget per hook call, no redirects.

The access token lives only in this object for the duration of one request; it is never
logged and only ever sent to the allow-listed `fhirServer` it came with.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests

from ..security.allowlist import within_base
from .parse import bundle_problem

MAX_RESPONSE_BYTES = 20 * 1024 * 1024


def _socket_of(raw: Any) -> Any:
    """The socket under a urllib3 response, to bound each read by the remaining budget."""
    conn = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    sock = getattr(conn, "sock", None)
    if sock is not None:
        return sock
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    return getattr(getattr(fp, "raw", None), "_sock", None)


class FhirFetchError(Exception):
    """The FHIR server could not supply an answer; the message is safe to show and log."""


@dataclass
class Budget:
    """Wall-clock allowance shared by every FHIR call made for one hook request."""

    total_s: float
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.total_s - (time.monotonic() - self.started)


@dataclass
class FetchStats:
    calls: int = 0
    failures: int = 0


class FhirClient:
    def __init__(
        self,
        base_url: str,
        access_token: str | None,
        budget: Budget,
        session: requests.Session,
        *,
        connect_timeout_s: float = 0.1,
        max_pages: int = 5,
        max_resources: int = 2000,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._token = access_token
        self.budget = budget
        self.session = session
        self.connect_timeout_s = connect_timeout_s
        self.max_pages = max_pages
        self.max_resources = max_resources
        self.stats = FetchStats()
        base = urlsplit(self.base_url)
        self._origin = (base.scheme, base.netloc.lower())
        self._path_prefix = base.path

    def __repr__(self) -> str:  # never show the token
        return f"FhirClient({self.base_url!r})"

    def _on_server(self, url: str) -> bool:
        # same scheme, host, port and path prefix; no dot segments or encoded slashes (issue 5)
        return within_base(url, self.base_url)

    def get_json(self, url_or_path: str) -> dict[str, Any]:
        url = url_or_path if "://" in url_or_path else urljoin(self.base_url, url_or_path.lstrip("/"))
        if not self._on_server(url):
            raise FhirFetchError("link points outside the FHIR server; not followed")
        remaining = self.budget.remaining()
        if remaining <= 0.005:
            raise FhirFetchError("time budget for FHIR server calls used up")
        headers = {"Accept": "application/fhir+json, application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        self.stats.calls += 1
        try:
            resp = self.session.get(
                url,
                headers=headers,
                timeout=(min(self.connect_timeout_s, remaining), remaining),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            self.stats.failures += 1
            raise FhirFetchError("FHIR server did not answer within the time budget") from None
        except requests.RequestException as exc:
            self.stats.failures += 1
            raise FhirFetchError(f"FHIR server unreachable ({type(exc).__name__})") from None
        try:
            if resp.status_code != 200:
                self.stats.failures += 1
                raise FhirFetchError(f"FHIR server answered HTTP {resp.status_code}")
            chunks = self._read_body(resp)
        finally:
            resp.close()
        try:
            data = orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError:
            self.stats.failures += 1
            raise FhirFetchError("FHIR server returned something that is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
            self.stats.failures += 1
            raise FhirFetchError("FHIR server returned JSON that is not a FHIR resource")
        if data["resourceType"] == "OperationOutcome":
            self.stats.failures += 1
            raise FhirFetchError("FHIR server returned an OperationOutcome instead of data")
        problem = bundle_problem(data)
        if problem:
            self.stats.failures += 1
            raise FhirFetchError(f"FHIR server returned {problem}")
        return data

    def _read_body(self, resp: requests.Response) -> list[bytes]:
        """The body within what is left of the budget, however slowly the server sends it.

        A read timeout bounds each socket read, not the whole body: a server trickling a byte at a
        time would hold the call indefinitely. So every read waits at most the remaining budget
        (the socket's timeout is set before each one) and returns what has arrived (read1), and
        the budget is checked between reads.
        """
        raw = resp.raw
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                remaining = self.budget.remaining()
                if remaining <= 0:
                    raise FhirFetchError("FHIR server did not answer within the time budget")
                sock = _socket_of(raw)  # None once urllib3 has released the connection
                if sock is not None:
                    try:
                        sock.settimeout(max(remaining, 0.001))
                    except OSError:
                        pass  # already closed: the next read ends the body
                chunk = raw.read1(65536) if hasattr(raw, "read1") else raw.read(65536)
                if not chunk:
                    return chunks
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise FhirFetchError("FHIR server response too large")
                chunks.append(chunk)
        except FhirFetchError:
            self.stats.failures += 1
            raise
        except (requests.RequestException, OSError, ValueError, Exception) as exc:  # urllib3 timeouts and protocol errors
            self.stats.failures += 1
            if "timed out" in str(exc).lower() or isinstance(exc, TimeoutError):
                raise FhirFetchError("FHIR server did not answer within the time budget") from None
            raise FhirFetchError(f"FHIR server answer could not be read ({type(exc).__name__})") from None

    def search(self, query: str) -> tuple[list[Any], bool]:
        """All entries of a search, following `next` links; returns (resources, truncated)."""
        page = self.get_json(query)
        if page["resourceType"] != "Bundle":
            return [page], False
        return self.follow_pages(page, already_fetched=1)

    def follow_pages(self, first: dict[str, Any], already_fetched: int = 0) -> tuple[list[Any], bool]:
        resources: list[Any] = [e.get("resource") for e in first.get("entry") or [] if isinstance(e, dict)]
        page, pages = first, already_fetched
        while True:
            nxt = next(
                (link.get("url") for link in page.get("link") or [] if isinstance(link, dict) and link.get("relation") == "next"),
                None,
            )
            if not nxt:
                return resources, False
            if pages >= self.max_pages or len(resources) >= self.max_resources:
                return resources, True
            page = self.get_json(nxt)
            if page.get("resourceType") != "Bundle":
                raise FhirFetchError("a `next` page of a search was not a Bundle")
            pages += 1
            resources.extend(e.get("resource") for e in page.get("entry") or [] if isinstance(e, dict))
