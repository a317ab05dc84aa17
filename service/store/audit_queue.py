"""The audit write, off the request path: a bounded in-process queue and one background writer.

A hook answer only puts its (PHI-free) audit record on the queue, which never blocks. The writer
thread takes up to `batch` records at a time and stores them in one transaction. It lingers up to
`linger_s` for a batch to fill instead of waking for every record: each wake-up takes the GIL from
the thread answering hooks, which showed as p99 latency of even the cheapest calls; `flush` and
`close` cut the wait short. While the
database is down or slow the records wait in the queue and the writer retries with back-off; only
when the queue is full is a record dropped, and then it is counted
(`pumpcds_audit_records_total{outcome="queue-full"}`) and logged with its ids. A clean exit (process exit,
gunicorn worker exit, `close()`) drains the queue first, bounded by `drain_s`.

Fork safety: the queue and its thread belong to the process that made them; a forked worker
starts its own (the pid is checked on every submit).
"""
from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter

from .db import Store, StoreUnavailable

log = logging.getLogger("pumpcds.audit")

AUDIT_RECORDS = Counter(
    "pumpcds_audit_records_total",
    "Hook-call audit records by outcome: written; queue-full (dropped: database down or too slow for "
    "longer than the queue holds); exit (dropped: database still unavailable when the process exited); "
    "refused (dropped: the database rejected the batch).",
    ("outcome",),
)

_QUEUES: weakref.WeakSet[AuditQueue] = weakref.WeakSet()


def _ids(record: dict[str, Any]) -> str:
    return f"service={str(record.get('service_id'))[:100]} hookInstance={str(record.get('hook_instance'))[:64]}"


class AuditQueue:
    """`Runtime.audit_sinks` entry that hands records to a background writer."""

    def __init__(self, store: Store, *, capacity: int = 10_000, batch: int = 200, drain_s: float = 10.0,
                 idle_exit_s: float = 5.0, retry_max_s: float = 5.0, linger_s: float = 0.05,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.capacity = capacity
        self.batch = max(1, batch)
        self.linger_s = linger_s
        self.drain_s = drain_s
        self.idle_exit_s = idle_exit_s
        self.retry_max_s = retry_max_s
        self._clock = clock
        self._reset()
        _QUEUES.add(self)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._records: collections.deque[dict[str, Any]] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._in_flight = 0
        self._closing = False
        self._lingering = False  # the writer waits for a batch to fill: submit() need not wake it
        self._hurry = 0  # callers of flush() waiting: no lingering
        self.dropped = 0
        self.failures = 0

    # -- request side --------------------------------------------------------------------------

    def __call__(self, record: dict[str, Any]) -> None:
        self.submit(record)

    def submit(self, record: dict[str, Any]) -> bool:
        """Queue one record; never blocks. False (counted, logged with ids) when the queue is full."""
        if self._pid != os.getpid():
            self._reset()  # a forked child: the parent's thread and lock do not exist here
        with self._cond:
            if len(self._records) >= self.capacity:
                self.dropped += 1
                AUDIT_RECORDS.labels("queue-full").inc()
                log.error("audit queue full (%d records): record dropped %s", self.capacity, _ids(record))
                return False
            self._records.append(record)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="pumpcds-audit-writer", daemon=True)
                self._thread.start()
            if not self._lingering or len(self._records) >= self.batch:
                self._cond.notify()
        return True

    def pending(self) -> int:
        with self._cond:
            return len(self._records) + self._in_flight

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued record is stored (or the timeout passes); True when empty."""
        if self._pid != os.getpid():
            return True
        deadline = self._clock() + (self.drain_s if timeout_s is None else timeout_s)
        with self._cond:
            self._hurry += 1
            self._cond.notify_all()  # a lingering writer writes now
            try:
                while self._records or self._in_flight:
                    left = deadline - self._clock()
                    if left <= 0:
                        return False
                    self._cond.wait(min(left, 0.05))
            finally:
                self._hurry -= 1
        return True

    def catch_up(self, timeout_s: float) -> bool:
        """`flush`, but only while the writer is succeeding: when the database is failing, waiting
        for the queue would only add to the caller's own wait for the same database."""
        return self.failures == 0 and self.flush(timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """Drain the queue (bounded), stop the writer, count and log whatever could not be stored."""
        if self._pid != os.getpid():
            return
        self.flush(timeout_s)
        with self._cond:
            self._closing = True
            left = list(self._records)
            self._records.clear()
            self._cond.notify_all()
        if left:
            self.dropped += len(left)
            AUDIT_RECORDS.labels("exit").inc(len(left))
            log.error("%d audit record(s) not stored at exit (database unavailable): %s",
                      len(left), "; ".join(_ids(r) for r in left[:20]))

    # -- writer --------------------------------------------------------------------------------

    def _take(self) -> list[dict[str, Any]] | None:
        """The next batch, or None when the writer should stop (closing, or idle for a while)."""
        with self._cond:
            idle_until = self._clock() + self.idle_exit_s
            while True:
                while not self._records:
                    left = idle_until - self._clock()
                    if self._closing or left <= 0:
                        self._thread = None
                        return None
                    self._cond.wait(left)  # woken by submit() and close()
                if len(self._records) < self.batch and self.linger_s > 0 and not (self._closing or self._hurry):
                    self._lingering = True
                    try:
                        self._cond.wait(self.linger_s)  # woken early by a full batch, flush() or close()
                    finally:
                        self._lingering = False
                if self._records:  # close() may have taken them meanwhile
                    break
            batch = [self._records.popleft() for _ in range(min(self.batch, len(self._records)))]
            self._in_flight = len(batch)
            return batch

    def _done(self, batch: list[dict[str, Any]], stored: bool) -> None:
        with self._cond:
            lost = not stored and self._closing
            if not stored and not lost:
                self._records.extendleft(reversed(batch))  # back to the front, order kept
            self._in_flight = 0
            self._cond.notify_all()
        if lost:  # close() gave up waiting while this batch was being written
            self.dropped += len(batch)
            AUDIT_RECORDS.labels("exit").inc(len(batch))
            log.error("%d audit record(s) not stored at exit (database unavailable): %s",
                      len(batch), "; ".join(_ids(r) for r in batch[:20]))

    def _run(self) -> None:
        backoff = 0.1
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self.store.write_audits(batch)
            except StoreUnavailable as exc:
                self._done(batch, stored=False)
                self.failures += 1
                if self.failures == 1 or self.failures % 20 == 0:
                    log.error("audit write failed (%s); %d record(s) waiting, retrying; first: %s",
                              exc, self.pending(), "; ".join(_ids(r) for r in batch[:5]))
                if self._wait_closing(backoff):
                    return
                backoff = min(backoff * 2, self.retry_max_s)
                continue
            except Exception as exc:  # a record the database refuses: drop that batch, keep the writer
                self._done(batch, stored=True)
                AUDIT_RECORDS.labels("refused").inc(len(batch))
                log.error("audit batch refused (%s): %s", type(exc).__name__, "; ".join(_ids(r) for r in batch[:20]))
                continue
            self._done(batch, stored=True)
            AUDIT_RECORDS.labels("written").inc(len(batch))
            if self.failures:
                log.warning("audit writes resumed after %d failed attempt(s)", self.failures)
                self.failures = 0
            backoff = 0.1

    def _wait_closing(self, seconds: float) -> bool:
        """Sleep between retries; True when the queue is closing (the closer counts what is left)."""
        with self._cond:
            if not self._closing:
                self._cond.wait(seconds)
            if self._closing:
                self._thread = None
                return True
            return False


def close_all(timeout_s: float | None = None) -> None:
    """Drain every audit queue of this process (at exit and on gunicorn worker exit), all of them
    within one `timeout_s` (default: the longest `drain_s`)."""
    queues = [q for q in list(_QUEUES) if q._pid == os.getpid()]
    if not queues:
        return
    total = max(q.drain_s for q in queues) if timeout_s is None else timeout_s
    deadline = time.monotonic() + total
    for queue in queues:
        queue.close(max(0.0, deadline - time.monotonic()))


atexit.register(close_all)
