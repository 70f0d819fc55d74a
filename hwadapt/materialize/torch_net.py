"""Materialise an :class:`Arch` as a trainable PyTorch module.

Module names follow the block list (``blocks.3.dw``, ``blocks.3.pw``...) so pruning
and export can map parameters back to the description. Padding follows TensorFlow's
SAME rule (:func:`hwadapt.arch.ops.same_pads`) so ONNX and TFLite compute the same.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from hwadapt.arch.ops import conv_out_size, same_pads
from hwadapt.arch.spec import Arch, ArchError, Block


def _activation(name: str) -> nn.Module:
    return nn.ReLU6(inplace=True) if name == "relu6" else nn.ReLU(inplace=True)


class ConvBNAct(nn.Sequential):
    """conv + BN (+ activation) with SAME padding for the given input side."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, size: int,
                 act: str | None, groups: int = 1) -> None:
        before, after = same_pads(size, kernel, stride)
        layers: list[nn.Module] = []
        if before == after:
            conv = nn.Conv2d(cin, cout, kernel, stride, padding=before, groups=groups, bias=False)
        else:
            layers.append(nn.ZeroPad2d((before, after, before, after)))
            conv = nn.Conv2d(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)
        layers += [conv, nn.BatchNorm2d(cout)]
        if act:
            layers.append(_activation(act))
        super().__init__(*layers)

    @property
    def conv(self) -> nn.Conv2d:
        return next(m for m in self if isinstance(m, nn.Conv2d))

    @property
    def bn(self) -> nn.BatchNorm2d:
        return next(m for m in self if isinstance(m, nn.BatchNorm2d))


class ConvBlock(nn.Module):
    def __init__(self, block: Block, cin: int, size: int, act: str) -> None:
        super().__init__()
        self.conv = ConvBNAct(cin, block.out, block.kernel, block.stride, size, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class DWSepBlock(nn.Module):
    def __init__(self, block: Block, cin: int, size: int, act: str) -> None:
        super().__init__()
        self.dw = ConvBNAct(cin, cin, block.kernel, block.stride, size, act, groups=cin)
        self.pw = ConvBNAct(cin, block.out, 1, 1, conv_out_size(size, block.stride), act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class MBConvBlock(nn.Module):
    def __init__(self, block: Block, cin: int, size: int, act: str) -> None:
        super().__init__()
        mid = block.mid or cin
        self.expand = ConvBNAct(cin, mid, 1, 1, size, act) if block.mid else None
        self.dw = ConvBNAct(mid, mid, block.kernel, block.stride, size, act, groups=mid)
        self.project = ConvBNAct(mid, block.out, 1, 1, conv_out_size(size, block.stride), None)
        self.residual = block.has_residual(cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.dw(y))
        return x + y if self.residual else y


class SkipBlock(nn.Module):
    def __init__(self, block: Block, cin: int, size: int, act: str) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


BLOCK_MODULES: dict[str, type[nn.Module]] = {
    "conv": ConvBlock, "dwsep": DWSepBlock, "mbconv": MBConvBlock, "skip": SkipBlock,
}


class Net(nn.Module):
    """The PyTorch form of an :class:`Arch`."""

    def __init__(self, arch: Arch) -> None:
        super().__init__()
        self.arch = arch
        blocks, size = [], arch.resolution
        for block, cin in zip(arch.blocks, arch.input_widths()):
            blocks.append(BLOCK_MODULES[block.kind](block, cin, size, arch.act))
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


def build_net(arch: Arch) -> Net:
    return Net(arch)


# -- checkpoints: architecture JSON + state_dict, never a pickled module ------------
ARCH_FILE, WEIGHTS_FILE = "arch.json", "weights.pt"


def save_checkpoint(net: Net, directory: str | Path, extra: dict | None = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    net.arch.save(directory / ARCH_FILE)
    payload = {"state_dict": net.state_dict(), "extra": extra or {}}
    tmp = directory / (WEIGHTS_FILE + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(directory / WEIGHTS_FILE)
    return directory


def load_checkpoint(directory: str | Path) -> tuple[Net, dict]:
    """Rebuild the network from its JSON and load the weights with ``weights_only=True``."""
    directory = Path(directory)
    arch = Arch.load(directory / ARCH_FILE)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise ArchError(f"checkpoint {directory} has no {WEIGHTS_FILE}")
    payload = torch.load(weights, map_location="cpu", weights_only=True)
    net = Net(arch)
    try:
        net.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ArchError(f"checkpoint {directory} does not match its architecture: {first}") from exc
    return net, payload.get("extra", {})
