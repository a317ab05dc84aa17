"""An answer given before the request body was read to its end closes the connection, and says so.

A 413 (and a 401, 404 or 400 found before the body is read) leaves the rest of the body unread
on the socket. gunicorn then drains at most 64 KiB and otherwise drops the connection after
having announced `Connection: keep-alive`, so a client that reuses it fails on its next request.
Here the server is told to close before the headers go out, so the answer says
`Connection: close` and the client opens a new connection.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _TrackedInput:
    """`wsgi.input` that notes whether the body was read to its end."""

    def __init__(self, stream: Any, length: int | None) -> None:
        self._stream = stream
        self._left = length  # None: chunked, read until the server's stream ends
        self.finished = False

    def _seen(self, data: bytes, size: int | None) -> bytes:
        if self._left is not None:
            self._left -= len(data)
            self.finished = self._left <= 0
        if not data and size != 0:
            self.finished = True  # end of stream
        return data

    def read(self, size: int | None = -1) -> bytes:
        return self._seen(self._stream.read(size) if size is not None else self._stream.read(), size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._seen(self._stream.readline(size) if size is not None else self._stream.readline(), size)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


def _declared_length(environ: dict[str, Any]) -> int | None:
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _server_close(start_response: Callable[..., Any]) -> None:
    """Ask the WSGI server to close after this answer. gunicorn drops hop-by-hop headers set by the
    application (PEP 3333 forbids them), so its response object is told directly; werkzeug's server
    closes every connection anyway."""
    force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
    if callable(force_close):
        force_close()


class CloseAfterUnreadBody:
    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
        length = None if chunked else _declared_length(environ)
        if length == 0:
            return self.app(environ, start_response)
        tracked = _TrackedInput(environ["wsgi.input"], length)
        environ["wsgi.input"] = tracked

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if not tracked.finished:
                _server_close(start_response)
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.app(environ, start)
