"""What every command shares: one-line errors, the console, the progress reporter, logging."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console

from hwadapt.cli.progress import RichReporter
from hwadapt.errors import USER_ERRORS

console = Console(stderr=True)
WORKERS_HELP = ("Fan work out to this many Ray workers on this machine (one CPU slot each, one torch thread; "
                "on CUDA a share of the GPUs each); without it, everything runs here, one task after another.")
RAY_ADDRESS_HELP = "Run the workers on the existing Ray cluster at this address (HOST:PORT, ray://HOST:PORT, auto)."
F = TypeVar("F", bound=Callable)


def friendly_errors(func: F) -> F:
    """Turn hwadapt's and its agents' errors (and Ctrl-C) into one line on stderr and exit
    code 1 (130)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/]: finished work is saved; re-run the same command to resume")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def reporter(*, quiet: bool = False) -> RichReporter:
    """Progress bars on stderr (none when ``quiet``)."""
    return RichReporter(console, disable=quiet)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        handlers=[logging.NullHandler()] if not verbose else None)
