"""Which FHIR servers the service may contact: scheme, host, port and path prefix must match.

The request's `fhirServer` and its bearer token come from the caller; a server off this list
is never contacted, so the token can only ever go to a server the operator approved.
"""
from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import urlsplit

from .keys import is_loopback

# Dot segments and encoded separators could make a path that matches a prefix textually
# point elsewhere once an HTTP library normalises it ("/fhir/../admin").
_TRICKY_PATH = re.compile(r"(^|/)\.{1,2}(/|$)|%2e|%2f|%5c|\\", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class UrlParts(NamedTuple):
    scheme: str
    host: str
    port: int
    explicit_port: bool
    path: str


def url_parts(url: str, *, allow_query: bool = False) -> UrlParts | None:
    """The parts that decide where a request goes; None for anything odd (userinfo, query, dot segments)."""
    if not isinstance(url, str) or any(ch.isspace() for ch in url):
        return None
    try:
        s = urlsplit(url)
        port = s.port
    except ValueError:
        return None
    if s.scheme not in _DEFAULT_PORTS or not s.hostname or s.username or s.password:
        return None
    if (s.query and not allow_query) or s.fragment or _TRICKY_PATH.search(s.path):
        return None
    return UrlParts(s.scheme, s.hostname.lower(), port or _DEFAULT_PORTS[s.scheme], port is not None, s.path)


def _under(path: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return not prefix or path == prefix or path.startswith(prefix + "/")


def fhir_server_allowed(url: str, allowlist: tuple[str, ...], *, development_mode: bool) -> bool:
    """True when `url` falls under an allow-list entry; plain http only in development mode.

    A path prefix must match whole segments. An entry without a port means the scheme's default
    port, except for loopback hosts, where it matches any port (handy for local test servers).
    """
    target = url_parts(url)
    if target is None:
        return False
    if target.scheme == "http" and not development_mode:
        return False
    for entry in allowlist:
        allowed = url_parts(entry)
        if allowed is None or (target.scheme, target.host) != (allowed.scheme, allowed.host):
            continue
        any_port = not allowed.explicit_port and is_loopback(allowed.host)
        if not any_port and target.port != allowed.port:
            continue
        if _under(target.path, allowed.path):
            return True
    return False


def within_base(url: str, base: str) -> bool:
    """True when `url` stays on the `base` FHIR server (same scheme, host, port, under its path)."""
    target, root = url_parts(url, allow_query=True), url_parts(base)
    if target is None or root is None:
        return False
    same_origin = (target.scheme, target.host, target.port) == (root.scheme, root.host, root.port)
    return same_origin and _under(target.path, root.path)
