"""The deployed form of a network in PyTorch: its lowered ops run one by one with their
folded weights, by each kind's spec. What ONNX Runtime and LiteRT compute, in PyTorch."""
from __future__ import annotations

import torch
from torch import nn

from hwadapt.ops import Op, Weights


class OpGraph(nn.Module):
    """Runs ``ops`` (inputs NCHW; one tensor per network input, in order -1, -2, ...)."""

    def __init__(self, ops: list[Op], weights: list[Weights | None]) -> None:
        super().__init__()
        self.ops = list(ops)
        self.arrays = nn.ParameterList()
        self.slots: list[tuple[int, ...]] = []
        for w in weights:
            start = len(self.arrays)
            for array in w or ():
                self.arrays.append(nn.Parameter(torch.from_numpy(array.copy()), requires_grad=False))
            self.slots.append(tuple(range(start, len(self.arrays))))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        values: dict[int, torch.Tensor] = {-1 - k: x for k, x in enumerate(inputs)}
        for i, (op, slots) in enumerate(zip(self.ops, self.slots)):
            values[i] = op.spec.torch(op, [values[j] for j in op.inputs], [self.arrays[s] for s in slots])
        return values[len(self.ops) - 1]
