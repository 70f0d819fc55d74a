"""Running the networks of a grafting set side by side, and their in-memory ring.

A *backend* runs :func:`~hwadapt.graft.worker.run_worker` for every rank of a plan, each
with an :class:`~hwadapt.graft.worker.Exchange` to its ring, reports their epochs to a
:class:`~hwadapt.progress.Reporter` and returns their results; a worker that fails or
dies stops the run with one line (what each network finished stays saved). Here:
:class:`LocalProcesses`, one process per network (torch.multiprocessing), the weights
passing through queues. Another engine (a Ray actor per network) is one more
class with the same ``run``, registered in :data:`BACKENDS`; the algorithm does not change.
"""
from __future__ import annotations

import os
import queue
import signal
from typing import Any, ClassVar, Protocol

import torch.multiprocessing as mp

from hwadapt.graft.rule import GraftError, State
from hwadapt.graft.worker import GraftPlan, run_worker
from hwadapt.progress import Reporter

POLL_S = 0.5  # how often the parent looks at its workers while none reports


class Backend(Protocol):
    name: ClassVar[str]

    def run(self, plan: GraftPlan, reporter: Reporter, label: str) -> list[dict[str, Any]]:
        """Every network's result, in rank order; a :class:`GraftError` if one fails."""
        ...


class QueueExchange:
    """The ring over one queue per network: network r puts its state on the queue of
    network r + 1 and takes its own. The states are copies, so the tensors a queue moves
    into shared memory are nobody's parameters."""

    def __init__(self, inboxes: list) -> None:
        self.inboxes = inboxes

    def swap(self, rank: int, epoch: int, state: State) -> State:
        self.inboxes[(rank + 1) % len(self.inboxes)].put((epoch, state))
        sent, other = self.inboxes[rank].get()
        if sent != epoch:
            raise GraftError(f"network {rank} at epoch {epoch + 1} got its neighbour's weights of epoch {sent + 1}")
        return other


def _process_main(rank: int, plan: GraftPlan, exchange: QueueExchange, events) -> None:
    """A worker process: run the network, tell the parent each epoch, its result or its error."""
    try:
        result = run_worker(rank, plan, exchange, lambda kind, data: events.put((kind, rank, data)))
        events.put(("done", rank, result))
    except BaseException as exc:  # the parent reports it in one line and stops the others
        message = str(exc).splitlines()[0] if str(exc) else ""
        events.put(("error", rank, f"{type(exc).__name__}: {message}" if message else type(exc).__name__))
        raise SystemExit(1) from None


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class LocalProcesses:
    """One process per network on this machine, the ring through queues."""

    name = "processes"

    def run(self, plan: GraftPlan, reporter: Reporter, label: str) -> list[dict[str, Any]]:
        ctx = mp.get_context("forkserver")
        # workers fork from a server that imported hwadapt once and never ran torch: no
        # re-import per worker (seconds each), and no fork of a parent's torch threads
        ctx.set_forkserver_preload(["hwadapt.graft.worker"])
        exchange = QueueExchange([ctx.Queue() for _ in range(plan.nets)])
        events = ctx.Queue()
        workers = [ctx.Process(target=_process_main, args=(rank, plan, exchange, events), name=f"graft-net{rank}",
                               daemon=True) for rank in range(plan.nets)]
        epochs = plan.config.epochs
        task = reporter.start(label, total=plan.nets * (epochs - plan.start))
        at = {rank: plan.start for rank in range(plan.nets)}
        results: dict[int, dict[str, Any]] = {}
        try:
            for worker in workers:
                worker.start()
            while len(results) < plan.nets:
                try:
                    kind, rank, data = events.get(timeout=POLL_S)
                except queue.Empty:
                    self._check_alive(workers, results, at)
                    continue
                if kind == "epoch":
                    at[rank] = data["epoch"]
                    reporter.advance(task, 1, f"net{rank} epoch {data['epoch']}: holdout "
                                              f"{data['holdout_accuracy']:.3f}")
                elif kind == "done":
                    results[rank] = data
                else:
                    raise GraftError(f"network {rank} failed in epoch {at[rank] + 1}: {data}; the finished epochs "
                                     "are saved: re-run the same command to resume")
        finally:
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
            for worker in workers:
                if worker.pid is not None:  # started
                    worker.join()
            reporter.finish(task)
        return [results[rank] for rank in range(plan.nets)]

    @staticmethod
    def _check_alive(workers: list, results: dict[int, Any], at: dict[int, int]) -> None:
        for rank, worker in enumerate(workers):
            if rank not in results and worker.exitcode not in (None, 0):
                raise GraftError(f"network {rank}'s worker (pid {worker.pid}) died in epoch {at[rank] + 1} "
                                 f"({_exit_reason(worker.exitcode)}); the finished epochs are saved: re-run the same "
                                 "command to resume")


BACKENDS: dict[str, Backend] = {LocalProcesses.name: LocalProcesses()}


def worker_threads(nets: int) -> int:
    """Torch threads per worker: this machine's cores shared among the networks."""
    return max(1, (os.cpu_count() or 1) // nets)
