"""The Ray engine behind ``--workers N`` (a local Ray instance) and ``--ray-address ADDR``
(an existing cluster). Imported only when one of them is given.

Each task asks Ray for one CPU slot, where it trains with one torch thread, or -- when
the job trains on CUDA -- for its share of the GPUs (``gpus / workers``, at most one), so
``--workers 4`` on one GPU runs four tasks side by side on it. At most ``workers`` tasks
are in flight. The shared data goes into Ray's object store once per :meth:`map`.

A task whose worker process (or node) dies is run once more by Ray; if it dies again the
run stops with :class:`~hwadapt.cluster.executor.WorkerLost`, one line. An error raised
inside a task is raised here as it was raised there.
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from hwadapt.cluster.executor import Executor, ExecutorError, Task, TaskContext, WorkerLost
from hwadapt.progress import Reporter

try:
    import ray
    from ray.exceptions import RayError, RayTaskError
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
except ImportError:  # the optional extra is not installed
    ray = None

RETRIES = 1  # runs of a task beyond its first when its worker dies
CONNECT_TIMEOUT_S = 5.0
DEFAULT_PORTS = {"": 6379, "ray://": 10001}  # the GCS port of `ray start --head`, Ray Client's port


def _run_task(fn: Task, shared: Any, task: Any, device_type: str) -> Any:
    """A task on a worker: one torch thread on a CPU slot; on a GPU, the one Ray assigned
    (it is the only one the worker sees)."""
    if device_type == "cpu":
        torch.set_num_threads(1)
    return fn(shared, task, TaskContext(torch.device(device_type)))


def check_reachable(address: str) -> None:
    """Refuse at once, in one line, an address where nothing answers (Ray would retry for
    a minute and then fail with a page of log)."""
    if address == "auto":
        return
    scheme = "ray://" if address.startswith("ray://") else ""
    host, _, port = address[len(scheme):].rpartition(":") if ":" in address[len(scheme):] else (
        address[len(scheme):], "", "")
    try:
        target = (host, int(port) if port else DEFAULT_PORTS[scheme])
    except ValueError:
        raise ExecutorError(f"--ray-address {address}: expected HOST:PORT, ray://HOST:PORT or auto") from None
    try:
        socket.create_connection(target, timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ExecutorError(f"--ray-address {address}: nothing answers at {target[0]}:{target[1]} "
                            f"({exc.strerror or exc}); start the cluster (`ray start --head`) or check the "
                            "address") from None


class RayExecutor(Executor):
    def __init__(self, workers: int | None, address: str | None, device: torch.device, reporter: Reporter) -> None:
        if ray is None:
            raise ExecutorError("--workers and --ray-address need Ray: pip install 'hwadapt[cluster]'")
        self.device, self.reporter = device, reporter
        self.owned = not ray.is_initialized()  # a Ray this process already had is left running
        if self.owned:
            self._connect(workers, address)
        resources = ray.cluster_resources()
        self.workers = workers or max(1, int(resources.get("CPU", 1)))
        self.gpus = float(resources.get("GPU", 0))
        if device.type == "cuda" and self.gpus < 1:
            self.close()
            raise ExecutorError(f"--device {device}: the Ray cluster has no GPU")

    def _connect(self, workers: int | None, address: str | None) -> None:
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.ERROR}
        if address is not None:
            check_reachable(address)
            options["address"] = address
        else:
            options["num_cpus"] = workers
            options["num_gpus"] = torch.cuda.device_count() if self.device.type == "cuda" else 0
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExecutorError(f"could not start or reach Ray{f' at {address}' if address else ''}: {message}") \
                from None

    def _options(self, here: bool) -> dict[str, Any]:
        options: dict[str, Any] = {"num_cpus": 1, "max_retries": RETRIES}
        if self.device.type == "cuda":
            options["num_gpus"] = min(1.0, self.gpus / self.workers)
        if here:  # on this node: the devices an agent talks to are attached here
            node = ray.get_runtime_context().get_node_id()
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
        return options

    def map(self, fn: Task, shared: Any, tasks: Sequence[Any], *, here: bool = False) -> Iterator[tuple[int, Any]]:
        remote = ray.remote(_run_task).options(**self._options(here))
        shared_ref = ray.put(shared)
        queue, running = list(enumerate(tasks)), {}
        try:
            while queue or running:
                while queue and len(running) < self.workers:
                    index, task = queue.pop(0)
                    running[remote.remote(fn, shared_ref, task, self.device.type)] = index
                (ref,), _ = ray.wait(list(running), num_returns=1)
                index = running.pop(ref)
                yield index, self._result(ref, index, len(tasks))
        finally:  # stopped early (an error, Ctrl-C, the caller's break): stop what still runs
            for ref in running:
                ray.cancel(ref, force=True)

    @staticmethod
    def _result(ref: Any, index: int, count: int) -> Any:
        try:
            return ray.get(ref)
        except RayTaskError as exc:  # the task raised: raise what it raised
            cause = getattr(exc, "cause", None)
            raise (cause if isinstance(cause, Exception) else exc) from None
        except RayError as exc:
            raise WorkerLost(f"a worker died running task {index + 1} of {count} ({type(exc).__name__}), "
                             f"and again when Ray ran it once more; finished work is kept: re-run the same "
                             "command to resume") from None

    def close(self) -> None:
        if self.owned and ray.is_initialized():
            ray.shutdown()
