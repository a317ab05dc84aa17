"""Pooled random UUIDs: valid version 4, unique, and never shared by a parent and its forked worker."""
from __future__ import annotations

import os
import threading
import uuid

from service import uuids


def test_version_4_in_the_usual_form() -> None:
    for _ in range(1000):
        text = uuids.uuid4_str()
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert uuid.UUID(hex=uuids.uuid4_hex()).version == 4


def test_unique_across_pool_refills_and_threads() -> None:
    seen: list[str] = []

    def take() -> None:
        seen.extend(uuids.uuid4_str() for _ in range(3000))  # several 4 KiB pools each

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == len(set(seen)) == 12000


def test_a_forked_child_does_not_reuse_the_parents_pool() -> None:
    uuids.uuid4_str()  # the parent has a pool with bytes left
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next UUIDs, then leave without running the parent's cleanup
        os.close(read)
        os.write(write, ",".join(uuids.uuid4_str() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split(",")
    os.waitpid(pid, 0)
    parent = [uuids.uuid4_str() for _ in range(10)]
    assert len(child) == 10 and not set(child) & set(parent)
