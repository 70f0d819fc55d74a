"""One progress-bar style for every long loop (stderr, with ETA)."""
from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

_console = Console(stderr=True)


def make_progress(*, transient: bool = False, disable: bool = False) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("eta"),
                    TimeRemainingColumn(), console=_console, transient=transient, disable=disable)
