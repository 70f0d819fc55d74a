"""Where training runs: ``--device {auto,cpu,cuda,cuda:N}``, and feeding batches there.

A network's device is where its parameters are: the training loop, evaluation and the
methods move data to it. On a GPU the batches are cut and augmented on the CPU one
ahead in a background thread and copied from pinned memory while the GPU computes, and
the forward pass runs in bfloat16 autocast (no loss scaling needed); on the CPU nothing
changes, so CPU results are what they were.
"""
from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from hwadapt.errors import HwadaptError

DEVICES = "auto, cpu, cuda, cuda:N"


class DeviceError(HwadaptError):
    """A device that is not here."""


def resolve_device(spec: str = "auto") -> torch.device:
    """The device ``spec`` names; ``auto`` is CUDA when a GPU is present, else the CPU."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {spec}: no CUDA device here (this PyTorch sees no GPU); use --device cpu")
        device = torch.device(spec)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return device
    raise DeviceError(f"unknown --device {spec!r}; expected one of {DEVICES}")


def device_of(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


def cpu_copy(tree: Any) -> Any:
    """``tree`` (nested dicts, lists and tuples) with every tensor detached onto the CPU:
    what a checkpoint holds, so that it loads on any device."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu()
    if isinstance(tree, dict):
        return {key: cpu_copy(value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(cpu_copy(value) for value in tree)
    return tree


def set_threads(threads: int | None) -> None:
    """Torch's intra-op threads for training: ``threads``, or (None / 0) every core."""
    if threads:
        torch.set_num_threads(threads)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA; nothing elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def on_device(batches: Iterator[tuple[torch.Tensor, torch.Tensor]], device: torch.device,
              ahead: int = 2) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``batches`` on ``device``: as they are on the CPU; on a GPU prepared ``ahead`` of use
    in a background thread (in the same order, so seeded runs see the same batches)."""
    if device.type == "cpu":
        yield from batches
        return
    ready: queue.Queue = queue.Queue(maxsize=ahead)
    stop, done = threading.Event(), object()

    def offer(item: object) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                ready.put(item, timeout=0.1)
                return

    def produce() -> None:
        try:
            for x, y in batches:
                if stop.is_set():
                    return
                offer((x.pin_memory(), y.pin_memory()))
        except BaseException as exc:  # the consumer re-raises it
            offer(exc)
        offer(done)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        while (item := ready.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            x, y = item
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    finally:  # the consumer stopped early (a step count reached mid-epoch): let the producer go
        stop.set()
        producer.join()
