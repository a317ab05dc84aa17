"""Which FHIR servers the service may contact: scheme, host, port and path prefix must match."""
from __future__ import annotations

from urllib.parse import urlsplit


def _parts(url: str) -> tuple[str, str, int | None, str] | None:
    try:
        s = urlsplit(url)
        port = s.port or {"http": 80, "https": 443}.get(s.scheme)
    except ValueError:
        return None
    if s.scheme not in {"http", "https"} or not s.hostname or s.username or s.password:
        return None
    return s.scheme, s.hostname.lower(), port, s.path


def fhir_server_allowed(url: str, allowlist: tuple[str, ...], *, development_mode: bool) -> bool:
    """True when `url` falls under an allow-list entry; plain http only in development mode.

    An entry without a port matches any port on that host (handy for loopback test servers);
    a path prefix must match whole segments.
    """
    target = _parts(url)
    if target is None:
        return False
    scheme, host, port, path = target
    if scheme == "http" and not development_mode:
        return False
    for entry in allowlist:
        allowed = _parts(entry)
        if allowed is None:
            continue
        a_scheme, a_host, _a_port, a_path = allowed
        explicit_port = urlsplit(entry).port
        if scheme != a_scheme or host != a_host:
            continue
        if explicit_port is not None and explicit_port != port:
            continue
        prefix = a_path.rstrip("/")
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            continue
        return True
    return False
