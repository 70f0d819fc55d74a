"""The command line's :class:`~hwadapt.progress.Reporter`: rich progress bars with ETA on
stderr, and notes printed above them."""
from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from hwadapt.progress import Reporter


class RichReporter(Reporter):
    """Draws every task as a bar; use as a context manager around the work."""

    def __init__(self, console: Console, *, transient: bool = False, disable: bool = False) -> None:
        self.console = console
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("eta"),
                                 TimeRemainingColumn(), console=console, transient=transient, disable=disable)

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, description: str, total: float | None = None, done: float = 0.0) -> int:
        return int(self.progress.add_task(description, total=total, completed=done, status=""))

    def advance(self, task: int, amount: float = 1.0, status: str | None = None) -> None:
        fields = {} if status is None else {"status": status}
        self.progress.update(TaskID(task), advance=amount, **fields)

    def update(self, task: int, *, done: float | None = None, total: float | None = None,
               status: str | None = None, description: str | None = None) -> None:
        fields = {} if status is None else {"status": status}
        self.progress.update(TaskID(task), completed=done, total=total, description=description, **fields)

    def finish(self, task: int) -> None:
        if any(t.id == task for t in self.progress.tasks):
            self.progress.remove_task(TaskID(task))

    def note(self, message: str) -> None:
        self.progress.console.print(message, highlight=False, soft_wrap=True)
