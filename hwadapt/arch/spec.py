"""The architecture description that flows through hwadapt.

An :class:`Arch` is a plain, frozen, JSON-serialisable list of blocks
(:class:`~hwadapt.blocks.Block`) with explicit per-layer channel widths. The same
object is materialised as a PyTorch module for training, emitted as ONNX / TFLite for
measurement, and priced by the LUT predictor.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hwadapt.blocks import BLOCK_KINDS, Block
from hwadapt.errors import ArchError
from hwadapt.ops import ACTIVATIONS


@dataclass(frozen=True)
class Arch:
    """A CNN: blocks, then global average pooling and a linear classifier."""

    family: str
    resolution: int
    num_classes: int
    blocks: tuple[Block, ...]
    act: str = "relu6"
    in_channels: int = 3
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        validate(self)

    # -- widths -------------------------------------------------------------------
    def input_widths(self) -> list[int]:
        """Input channel count of each block."""
        widths, cin = [], self.in_channels
        for block in self.blocks:
            widths.append(cin)
            cin = block.width
        return widths

    def with_blocks(self, blocks: list[Block] | tuple[Block, ...]) -> Arch:
        return replace(self, blocks=tuple(blocks))

    def feature_width(self) -> int:
        return self.blocks[-1].width

    # -- serialisation ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = {
            "family": self.family,
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            "act": self.act,
            "in_channels": self.in_channels,
            "blocks": [b.to_dict() for b in self.blocks],
        }
        if self.meta:
            data["meta"] = self.meta
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Arch:
        try:
            blocks = tuple(Block(**b) for b in data["blocks"])
            return cls(
                family=str(data["family"]),
                resolution=int(data["resolution"]),
                num_classes=int(data["num_classes"]),
                blocks=blocks,
                act=str(data.get("act", "relu6")),
                in_channels=int(data.get("in_channels", 3)),
                meta=dict(data.get("meta", {})),
            )
        except (KeyError, TypeError) as exc:
            raise ArchError(f"malformed architecture description: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> Arch:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ArchError(f"architecture JSON is not valid JSON: {exc}") from exc

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Arch:
        path = Path(path)
        if not path.is_file():
            raise ArchError(f"no architecture file at {path}")
        return cls.from_json(path.read_text())


def validate(arch: Arch) -> None:
    """Raise :class:`ArchError` if the description cannot be built."""
    if arch.act not in ACTIVATIONS[1:]:
        raise ArchError(f"unknown activation {arch.act!r}; expected one of {ACTIVATIONS[1:]}")
    if arch.resolution < 1 or arch.num_classes < 1 or not arch.blocks:
        raise ArchError("resolution, num_classes and blocks must be positive / non-empty")
    cin = arch.in_channels
    for i, block in enumerate(arch.blocks):
        if block.kind not in BLOCK_KINDS:
            raise ArchError(f"block {i}: unknown kind {block.kind!r}; known: {', '.join(sorted(BLOCK_KINDS))}")
        kind = BLOCK_KINDS[block.kind]
        if block.out < 1 or block.mid < 0 or block.carry < 0 or block.kernel < 1 or (
                kind.odd_kernel and block.kernel % 2 == 0):
            raise ArchError(f"block {i}: widths must be positive and kernels odd: {block}")
        if block.stride not in (1, 2):
            raise ArchError(f"block {i}: stride must be 1 or 2, got {block.stride}")
        problem = kind.validate(block, cin)
        if problem:
            raise ArchError(f"block {i} ({block.kind}): {problem}")
        cin = block.width
