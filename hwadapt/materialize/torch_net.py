"""Materialise an :class:`Arch` as a trainable PyTorch module, and its checkpoints.

Module names follow the block list (``blocks.3.dw``, ``blocks.3.pw``...): each lowered
op's ``role`` names its unit in its block's module, so pruning and export map
parameters back to the description.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from hwadapt.arch.spec import Arch
from hwadapt.errors import ArchError
from hwadapt.ops import conv_out_size

CHECKPOINT_FORMAT = 1  # the layout of weights.pt: {"format", "state_dict", "extra"}


class Net(nn.Module):
    """The PyTorch form of an :class:`Arch`."""

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        self.arch = arch
        blocks, size = [], arch.resolution
        for block, cin in zip(arch.blocks, arch.input_widths()):
            blocks.append(block.spec.module(block, cin, size, arch.act))
            size = conv_out_size(size, block.stride)
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(arch.feature_width(), arch.num_classes)
        init_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def init_weights(net: nn.Module) -> None:
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            nn.init.zeros_(module.bias)


# -- checkpoints: architecture JSON + state_dict, never a pickled module ------------
ARCH_FILE, WEIGHTS_FILE = "arch.json", "weights.pt"


def save_checkpoint(net: Net, directory: str | Path, extra: dict | None = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    net.arch.save(directory / ARCH_FILE)
    state = {name: tensor.detach().cpu() for name, tensor in net.state_dict().items()}
    payload = {"format": CHECKPOINT_FORMAT, "state_dict": state, "extra": extra or {}}
    tmp = directory / (WEIGHTS_FILE + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(directory / WEIGHTS_FILE)
    return directory


def read_weights(path: Path) -> dict:
    """A checkpoint's payload, loaded with ``weights_only=True``; one-line errors for files
    that are not hwadapt checkpoints (or hold objects other than tensors)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ArchError(f"{path} holds objects other than tensors and plain data; refused "
                        "(hwadapt loads weights with weights_only=True)") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ArchError(f"{path} is not a readable PyTorch checkpoint: {str(exc).splitlines()[0]}") from None
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise ArchError(f"{path} is not a hwadapt checkpoint (no state_dict)")
    if payload.get("format", CHECKPOINT_FORMAT) != CHECKPOINT_FORMAT:  # checkpoints before 'format' are format 1
        raise ArchError(f"{path} has checkpoint format {payload['format']}; this hwadapt reads format "
                        f"{CHECKPOINT_FORMAT}")
    return payload


def load_checkpoint(directory: str | Path, device: torch.device | str = "cpu") -> tuple[Net, dict]:
    """Rebuild the network from its JSON and load the weights with ``weights_only=True``
    (onto ``device``)."""
    directory = Path(directory)
    arch = Arch.load(directory / ARCH_FILE)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise ArchError(f"checkpoint {directory} has no {WEIGHTS_FILE}")
    payload = read_weights(weights)
    net = Net(arch)
    mismatch = _shape_mismatch(net.state_dict(), payload["state_dict"])
    if mismatch:
        raise ArchError(f"checkpoint {directory}: {ARCH_FILE} and {WEIGHTS_FILE} disagree: {mismatch}")
    net.load_state_dict(payload["state_dict"])
    return net.to(device), payload.get("extra", {})


def _shape_mismatch(expected: dict, found: dict) -> str | None:
    """The first difference between the architecture's parameters and the file's, named."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing or unexpected:
        return f"{len(missing)} parameters missing (first: {missing[:1]}), {len(unexpected)} unexpected " \
               f"(first: {unexpected[:1]})"
    for name, tensor in expected.items():
        if tuple(found[name].shape) != tuple(tensor.shape):
            return (f"{name} is {tuple(tensor.shape)} in {ARCH_FILE} but {tuple(found[name].shape)} in "
                    f"{WEIGHTS_FILE}")
    return None
