"""FHIR Bulk Data Access client: `$export` kick-off, status polling, download of the output files.

Kick-off with `Prefer: respond-async` (system, `Patient/` or `Group/<id>/` level, optional `_type`
and `_since`); polling of the Content-Location honouring Retry-After (seconds or HTTP date, capped);
download of each output file (streamed to disk, the bearer token sent only to the server's own
origin); the job is deleted on the server when done. The token comes from a file or an
environment variable, never from the command line (where `ps` would show it).
"""
from __future__ import annotations

import email.utils
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests

log = logging.getLogger("pumpcds.audit.bulk")
TOKEN_ENV = "PUMPCDS_BULK_TOKEN"


class BulkExportError(Exception):
    """The export could not be had; the message says at which step and why (no patient data)."""


@dataclass
class BulkResult:
    files: list[Path] = field(default_factory=list)
    polls: int = 0
    transaction_time: str | None = None
    errors: list[Path] = field(default_factory=list)  # OperationOutcome NDJSON the server reported


def read_token(token_file: str | None, environ: dict[str, str] | None = None) -> str | None:
    environ = dict(os.environ) if environ is None else environ
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise BulkExportError(f"cannot read the bearer token file {token_file}: {exc.strerror}") from None
        if not token:
            raise BulkExportError(f"the bearer token file {token_file} is empty")
        return token
    return environ.get(TOKEN_ENV) or None


def retry_after(value: str | None, default_s: float, cap_s: float) -> float:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return min(default_s, cap_s)
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap_s)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return min(default_s, cap_s)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, min((when - datetime.now(UTC)).total_seconds(), cap_s))


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _why(resp: requests.Response) -> str:
    try:
        issues = resp.json().get("issue") or []
        text = "; ".join(str(i.get("diagnostics") or i.get("code")) for i in issues if isinstance(i, dict))
    except ValueError:
        text = ""
    return f"HTTP {resp.status_code}" + (f": {text[:300]}" if text else "")


class BulkClient:
    def __init__(self, base_url: str, token: str | None = None, session: requests.Session | None = None,
                 timeout_s: float = 60.0, max_wait_s: float = 3600.0, poll_cap_s: float = 120.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base = base_url.rstrip("/")
        self.token = token
        self.http = session or requests.Session()
        self.http.trust_env = False
        self.timeout = timeout_s
        self.max_wait = max_wait_s
        self.poll_cap = poll_cap_s
        self.sleep = sleep

    def _headers(self, url: str, accept: str = "application/fhir+json") -> dict[str, str]:
        headers = {"Accept": accept}
        if self.token and _origin(url) == _origin(self.base):
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def kick_off(self, level: str = "system", types: list[str] | None = None, since: str | None = None) -> str:
        path = {"system": "$export", "patient": "Patient/$export"}.get(level) or f"Group/{level.removeprefix('group:')}/$export"
        params = {"_outputFormat": "application/fhir+ndjson"}
        if types:
            params["_type"] = ",".join(types)
        if since:
            params["_since"] = since
        url = f"{self.base}/{path}?{urlencode(params)}"
        try:
            resp = self.http.get(url, headers={**self._headers(url), "Prefer": "respond-async"}, timeout=self.timeout,
                                 allow_redirects=False)
        except requests.RequestException as exc:
            raise BulkExportError(f"$export kick-off: cannot reach {self.base} ({type(exc).__name__})") from None
        if resp.status_code != 202 or not resp.headers.get("Content-Location"):
            raise BulkExportError(f"$export kick-off was refused: {_why(resp)}")
        return resp.headers["Content-Location"]

    def wait(self, status_url: str, result: BulkResult) -> dict:
        deadline = time.monotonic() + self.max_wait
        while True:
            try:
                resp = self.http.get(status_url, headers=self._headers(status_url, "application/json"),
                                     timeout=self.timeout, allow_redirects=False)
            except requests.RequestException as exc:
                raise BulkExportError(f"$export status: cannot reach the server ({type(exc).__name__})") from None
            result.polls += 1
            if resp.status_code == 200:
                try:
                    return resp.json()
                except ValueError:
                    raise BulkExportError("$export status: the manifest is not JSON") from None
            if resp.status_code not in (202, 429, 503):
                raise BulkExportError(f"$export failed on the server: {_why(resp)}")
            wait = retry_after(resp.headers.get("Retry-After"), 1.0, self.poll_cap)
            if time.monotonic() + wait > deadline:
                raise BulkExportError(f"$export not complete after {self.max_wait:.0f} s of polling")
            log.info("bulk export in progress (%s); next poll in %.0f s", resp.headers.get("X-Progress", "no progress given")[:80], wait)
            self.sleep(wait)

    def download(self, manifest: dict, out: Path, result: BulkResult) -> None:
        out.mkdir(parents=True, exist_ok=True)
        needs_token = bool(manifest.get("requiresAccessToken"))
        for kind, items in (("output", manifest.get("output") or []), ("error", manifest.get("error") or [])):
            for n, item in enumerate(items):
                url, rtype = item.get("url"), str(item.get("type") or "Resource")
                if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                    raise BulkExportError(f"$export manifest: {kind} entry {n + 1} has no usable url")
                headers = self._headers(url, "application/fhir+ndjson")
                if not needs_token:
                    headers.pop("Authorization", None)
                name = "".join(ch if ch.isalnum() else "-" for ch in rtype)
                target = out / ("errors" if kind == "error" else "") / f"{name}.{n:03d}.ndjson"
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with self.http.get(url, headers=headers, timeout=self.timeout, stream=True, allow_redirects=False) as resp:
                        if resp.status_code != 200:
                            raise BulkExportError(f"$export download of a {rtype} file failed: {_why(resp)}")
                        with target.open("wb") as fh:
                            for chunk in resp.iter_content(1 << 20):
                                fh.write(chunk)
                except requests.RequestException as exc:
                    raise BulkExportError(f"$export download of a {rtype} file: {type(exc).__name__}") from None
                (result.errors if kind == "error" else result.files).append(target)

    def export(self, out: Path, level: str = "system", types: list[str] | None = None, since: str | None = None) -> BulkResult:
        result = BulkResult()
        status_url = self.kick_off(level, types, since)
        manifest = self.wait(status_url, result)
        result.transaction_time = manifest.get("transactionTime")
        self.download(manifest, out, result)
        try:  # the server may free the files now; failing to ask is harmless
            self.http.delete(status_url, headers=self._headers(status_url), timeout=self.timeout)
        except requests.RequestException:
            pass
        log.info("bulk export: %d files downloaded after %d status polls", len(result.files), result.polls)
        return result
