"""A TCP proxy on loopback, put between the service and PostgreSQL or Redis, that can fail on demand.

Modes (switch at any time; existing connections follow the mode too):
- pass: bytes flow both ways;
- hang: connections are accepted, bytes are taken and never delivered (a stalled network or server);
- refuse: new connections are reset at once (the server is down);
- cut(): every open connection is torn down now, then traffic passes again.

Bounded: daemon threads, at most `max_connections` at once, everything closed by `close()`.
"""
from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any


class FaultProxy:
    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1", max_connections: int = 64) -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.max_connections = max_connections
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = threading.Event()
        self.accepted = 0
        threading.Thread(target=self._accept, name="faultproxy-accept", daemon=True).start()

    # -- control -------------------------------------------------------------------------------

    def hang(self) -> None:
        self.mode = "hang"

    def refuse(self) -> None:
        self.mode = "refuse"
        self.cut()

    def heal(self) -> None:
        self.mode = "pass"

    def cut(self) -> None:
        with self._lock:
            sockets = list(self._open)
            self._open.clear()
        for s in sockets:
            _reset(s)

    def close(self) -> None:
        self._closed.set()
        self.cut()
        try:
            self._listener.close()
        except OSError:
            pass

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            with self._lock:
                crowded = len(self._open) >= 2 * self.max_connections
            if self.mode == "refuse" or crowded:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                data = src.recv(65536)
                if not data:
                    break
                while self.mode == "hang" and not self._closed.is_set():
                    time.sleep(0.01)  # swallowed until the mode changes (or the proxy closes)
                if self.mode == "refuse":
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def _reset(s: socket.socket) -> None:
    """Close with RST (not FIN), as a dead server or a cut network looks to the client."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.shutdown(socket.SHUT_RD)  # wakes a pump thread blocked in recv; sends nothing yet
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
