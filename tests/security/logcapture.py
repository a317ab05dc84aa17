"""Session-wide log capture: every log record of the whole test run, formatted as the service would.

tests/conftest.py installs `SESSION_LOG` on the root logger for the session; the log-hygiene
test (run last) checks the lines for patient data and tokens.
"""
from __future__ import annotations

import logging
import threading

from service.logging_setup import JsonFormatter


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []
        self.raw: list[str] = []  # also the unformatted record dicts, in case a formatter drops a leak
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            raw = str(record.__dict__)
        except Exception:  # a broken record must not break the test run
            return
        with self._guard:
            self.lines.append(line)
            self.raw.append(raw)


SESSION_LOG = LogCapture()
