"""What the user sees while an audit runs: a rich progress display on stderr (files read, visits
found, visits evaluated, rate), or nothing with --quiet. Counts only: never patient data."""
from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class AuditProgress:
    """Three lines: files read, visits found, visits evaluated (with visits/s)."""

    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or Console(file=sys.stderr, soft_wrap=True)
        self._bar: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> AuditProgress:
        if not self.quiet:
            self._bar = Progress(
                TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                console=self.console, transient=False,
            )
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def _task(self, name: str, total: int | None) -> TaskID | None:
        if self._bar is None:
            return None
        if name not in self._tasks:
            self._tasks[name] = self._bar.add_task(name, total=total, rate="")
        elif total is not None:
            self._bar.update(self._tasks[name], total=total)
        return self._tasks[name]

    def files(self, done: int, total: int) -> None:
        task = self._task("files read", total)
        if task is not None and self._bar is not None:
            self._bar.update(task, completed=done)

    def found(self, visits: int, candidates: int) -> None:
        task = self._task("visits found", candidates or 1)
        if task is not None and self._bar is not None:
            self._bar.update(task, completed=candidates, rate=f"{visits} visits grouped")

    def evaluated(self, done: int, total: int, pump_visits: int, elapsed: float) -> None:
        task = self._task("visits evaluated", total)
        if task is not None and self._bar is not None:
            rate = f"{done / elapsed:,.0f} visits/s, {pump_visits} pump visits" if elapsed > 0 else ""
            self._bar.update(task, completed=done, rate=rate)

    def say(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, highlight=False)
