"""``report.json`` of ``hwadapt stripe``: what the skeleton pruned, how accurate the network
is, and each export form's agreement, price and measured latency, network and layer."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT_FILE = "report.json"


@dataclass
class FormFigures:
    """One export form of the whole network."""

    ops: int  # fused ops
    macs: int  # multiply-accumulates it executes
    max_abs_diff: dict[str, float]  # per runtime (pytorch, onnx, tflite), against the masked PyTorch network
    measured_ms: dict[str, float]  # per backend: the median of its windows
    spread_pct: dict[str, float]  # per backend: how far those windows disagreed
    predicted_ms: dict[str, float] = field(default_factory=dict)  # per LUT (by its backend), calibrated
    speedup: dict[str, float] = field(default_factory=dict)  # per backend: the dense form's time over this one's


@dataclass
class LayerFigures:
    """One pruned convolution: its shape, what survived, and each of its forms alone."""

    name: str  # the unit, as in the checkpoint (blocks.3.conv1)
    shape: str  # cin->cout, kernel, stride, input side
    stripes: int  # alive
    total: int  # filters x k x k
    window: str  # rows x columns of the live positions' window ("-": none live, the block bypassed)
    forms: list[str]  # the forms it can take
    chosen: dict[str, str]  # per LUT (by its backend): the form its "best" network gives the layer
    # LUT backend -> form -> ms: its ops' standalone times in the LUT (what the "best" form picks by)
    predicted_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    # LUT backend -> form -> op kind -> ms: where a form's time goes (the 1x1 maps, the shift-add)
    predicted_parts_ms: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    measured_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # backend -> form -> ms, alone


@dataclass
class StripeReport:
    family: str
    width: float | None
    source: str  # "scratch" or the checkpoint trained on from
    data: str
    epochs: int
    sr: float
    threshold: float
    stripe_sparsity: float  # dead stripes over all stripes of the pruned convolutions
    flops_reduction: float  # 1 - the pruned network's MACs (live stripes only) over the dense network's
    macs_dense: int
    macs_pruned: int
    test_accuracy: float  # the masked PyTorch network's
    images: int  # real test images the forms were compared on
    output_scale: float  # the largest absolute output on them
    forms: dict[str, FormFigures]
    layers: list[LayerFigures]
    bypassed: list[str]  # residual blocks whose second convolution lost every stripe
    luts: list[str]
    backends: list[str]
    exports: dict[str, str]  # form.format -> file; "checkpoint": the pruned (folded) checkpoint
    notes: list[str] = field(default_factory=list)

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> StripeReport:
        data: dict[str, Any] = json.loads(Path(path).read_text())
        data["forms"] = {name: FormFigures(**figures) for name, figures in data["forms"].items()}
        data["layers"] = [LayerFigures(**layer) for layer in data["layers"]]
        return cls(**data)
