"""Random (version 4) UUIDs from a per-process pool of OS randomness.

A card, each suggestion and each request carry a fresh UUID, several per hook call. On this
project's VMs one `os.urandom` call (what `uuid.uuid4()` makes) costs tens of microseconds, so the
randomness is read 4 KiB at a time and handed out 16 bytes per UUID. The pool belongs to the
process that filled it: a forked worker starts with an empty one, so two workers never hand out
the same bytes.
"""
from __future__ import annotations

import os
import threading

_POOL_BYTES = 4096
_lock = threading.Lock()
_pool = b""
_at = 0


def _forget_pool() -> None:
    global _pool, _at, _lock
    _pool, _at, _lock = b"", 0, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def random_bytes16() -> bytes:
    global _pool, _at
    with _lock:
        if _at + 16 > len(_pool):
            _pool, _at = os.urandom(_POOL_BYTES), 0
        chunk = _pool[_at:_at + 16]
        _at += 16
    return chunk


def uuid4_hex() -> str:
    """32 hex digits of a version 4 UUID (version and variant bits set as RFC 9562 says)."""
    b = bytearray(random_bytes16())
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()


def uuid4_str() -> str:
    """A version 4 UUID in its usual 8-4-4-4-12 form."""
    h = uuid4_hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
