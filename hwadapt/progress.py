"""How long work reports its progress: library code calls a :class:`Reporter`, whoever
runs it decides what to show. The base class shows nothing (a notebook or a script that
wants quiet passes nothing); the command line draws bars with ETA
(:class:`hwadapt.cli.progress.RichReporter`)."""
from __future__ import annotations

import logging

log = logging.getLogger("hwadapt")


class Reporter:
    """Receives the progress of long work. Tasks are handles from :meth:`start`; ``total``
    may be None where the amount of work is not known in advance."""

    def start(self, description: str, total: float | None = None, done: float = 0.0) -> int:
        """Begin a task; returns its handle."""
        return 0

    def advance(self, task: int, amount: float = 1.0, status: str | None = None) -> None:
        """Some of the task's work is done."""

    def update(self, task: int, *, done: float | None = None, total: float | None = None,
               status: str | None = None, description: str | None = None) -> None:
        """Set what the task has done so far, or its total, status or description."""

    def finish(self, task: int) -> None:
        """The task is over (its bar goes; what is worth keeping is a :meth:`note`)."""

    def note(self, message: str) -> None:
        """A line worth showing between tasks (a stage begins, a figure is less certain)."""
        log.info(message)


QUIET = Reporter()
