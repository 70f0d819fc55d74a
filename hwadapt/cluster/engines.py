"""Choosing the engine: serial, or Ray behind ``--workers`` / ``--ray-address`` (Ray is
imported only then, so that it stays an optional extra)."""
from __future__ import annotations

import torch

from hwadapt.cluster.executor import Executor, ExecutorError, SerialExecutor
from hwadapt.progress import QUIET, Reporter


def make_executor(workers: int | None = None, address: str | None = None, *,
                  device: torch.device | None = None, reporter: Reporter = QUIET) -> Executor:
    """The serial executor without ``workers`` and ``address``; else a Ray one (``workers``
    tasks at once on this machine, or on the cluster at ``address``)."""
    if workers is None and address is None:
        return SerialExecutor(device, reporter)
    if workers is not None and workers < 1:
        raise ExecutorError(f"--workers must be at least 1, got {workers}")
    from hwadapt.cluster.ray_executor import RayExecutor

    return RayExecutor(workers, address, device or torch.device("cpu"), reporter)
