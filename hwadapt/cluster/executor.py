"""Where work that fans out runs: one task after another here, or as parallel Ray tasks.

An algorithm hands an :class:`Executor` a module-level function, the read-only data its
tasks share, and the tasks; it gets ``(index, result)`` pairs back as tasks finish, in
any order, and keeps whatever must survive an interruption itself (NetAdapt writes each
finished proposal before it looks at the next result). Nothing else in the algorithm
changes between engines, which is what keeps a parallel run identical to a serial one.

- :class:`SerialExecutor`: in this process, in order, on the job's device, drawing each
  task's progress.
- ``RayExecutor`` (:mod:`hwadapt.cluster.ray_executor`) (``--workers N`` / ``--ray-address``):
  one task per CPU slot (each with one torch thread) or per GPU. Ray is imported only
  when one is made, so a run without ``--workers`` never imports it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from hwadapt.errors import HwadaptError
from hwadapt.progress import QUIET, Reporter

S, T, R = TypeVar("S"), TypeVar("T"), TypeVar("R")


class ExecutorError(HwadaptError):
    """An engine that cannot be had (Ray missing, an address that does not answer)."""


class WorkerLost(ExecutorError):
    """A worker died (its process, or its node) and the task could not be finished."""


@dataclass(frozen=True)
class TaskContext:
    """What a task is given besides its data: where to compute and whom to tell."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    reporter: Reporter = QUIET


Task = Callable[[Any, Any, TaskContext], Any]  # fn(shared, task, context) -> result


class Executor:
    """Runs ``fn(shared, task, context)`` for every task. Use as a context manager."""

    workers: int = 1  # tasks at a time

    def map(self, fn: Task, shared: S, tasks: Sequence[T], *, here: bool = False) -> Iterator[tuple[int, R]]:
        """``(index, result)`` of every task as it finishes. ``here``: run the tasks on this
        machine (device agents reach phones attached here)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the engine."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Every task in this process, in order."""

    def __init__(self, device: torch.device | None = None, reporter: Reporter = QUIET) -> None:
        self.context = TaskContext(device or torch.device("cpu"), reporter)

    def map(self, fn: Task, shared: S, tasks: Sequence[T], *, here: bool = False) -> Iterator[tuple[int, R]]:
        for index, task in enumerate(tasks):
            yield index, fn(shared, task, self.context)
