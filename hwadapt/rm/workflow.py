"""``hwadapt rm``: a trained checkpoint re-parameterised into a plain one, checked on real
images in every form a runtime runs, and ``rm.json`` saying by how much the forms differ."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwadapt.arch.lowering import lower
from hwadapt.data import batches, load_dataset
from hwadapt.materialize import FORMATS, export
from hwadapt.materialize.run import run_model
from hwadapt.materialize.torch_net import Net, load_checkpoint, save_checkpoint
from hwadapt.rm.convert import reparameterize
from hwadapt.rm.structure import RmError
from hwadapt.train.loop import SUMMARY_FILE

RM_FILE = "rm.json"


@dataclass
class RmReport:
    source: str  # the source checkpoint
    family: str  # the source network's family
    images: int  # real images the forms were compared on
    data: str
    max_abs_diff: dict[str, float]  # per form of the plain network (pytorch, onnx, tflite), against the source
    output_scale: float  # the largest absolute output of the source network on those images
    params_before: int
    params_after: int
    ops_before: dict[str, int]  # fused ops per kind
    ops_after: dict[str, int]
    exports: dict[str, str]


def training_data(checkpoint: Path) -> str | None:
    """The ``--data`` the checkpoint was trained on, from its train.json (None: unknown);
    an error while its training is unfinished."""
    summary_path = checkpoint / SUMMARY_FILE
    if not summary_path.is_file():
        return None
    summary = json.loads(summary_path.read_text())
    if not summary.get("complete", True):
        done, planned = len(summary.get("history", [])), summary["identity"]["config"]["epochs"]
        raise RmError(f"{checkpoint} is still in training ({done} of {planned} epochs): RM needs its final weights; "
                      "finish it with the same `hwadapt train` command")
    return summary.get("identity", {}).get("data")


def real_images(data: str, resolution: int, count: int) -> torch.Tensor:
    """The first ``count`` test images of ``data``, normalised as training saw them."""
    splits = load_dataset(data, resolution)
    x, _ = next(iter(batches(splits.test, splits, count)))
    return x


def deployed_params(net: Net) -> int:
    """Parameters as a runtime holds them: BN folded into the convolutions."""
    from hwadapt.materialize.weights import folded_weights

    return int(sum(a.size for w in folded_weights(net) if w is not None for a in w))


def op_counts(net: Net) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in lower(net.arch):
        counts[op.kind] = counts.get(op.kind, 0) + 1
    return counts


def form_outputs(net: Net, x: torch.Tensor, folder: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``net``'s outputs on ``x`` in PyTorch and from its exported ONNX and TFLite files."""
    with torch.no_grad():
        outputs = {"pytorch": net(x).numpy()}
    files = {fmt: str(export(net.arch, fmt, folder / f"model.{fmt}", net=net)) for fmt in FORMATS}
    outputs.update({fmt: run_model(path, x.numpy()) for fmt, path in files.items()})
    return outputs, files


def rm_checkpoint(checkpoint: Path, out: Path, data: str | None = None, images: int = 64) -> RmReport:
    """Re-parameterise ``checkpoint`` into ``out`` (a plain checkpoint with its exports and
    ``rm.json``); ``data``: where the comparison images come from (default: the data the
    checkpoint was trained on)."""
    checkpoint, out = Path(checkpoint), Path(out)
    data = data or training_data(checkpoint)
    if data is None:
        raise RmError(f"{checkpoint} does not say what it was trained on; give --data to compare on real images")
    if out.exists() and any(out.iterdir()) and not (out / RM_FILE).is_file():
        raise RmError(f"{out} exists and is not an RM output; choose another --out")
    source, _ = load_checkpoint(checkpoint)
    source.eval()
    plain = reparameterize(source)
    x = real_images(data, source.arch.resolution, images)
    with torch.no_grad():
        expected = source(x).numpy()
    save_checkpoint(plain, out, {"rm_of": str(checkpoint.resolve())})
    outputs, files = form_outputs(plain, x, out)
    report = RmReport(str(checkpoint), source.arch.family, len(x), data,
                      {form: float(np.abs(got - expected).max()) for form, got in outputs.items()},
                      float(np.abs(expected).max()), deployed_params(source), deployed_params(plain),
                      op_counts(source), op_counts(plain), {"checkpoint": str(out), **files})
    (out / RM_FILE).write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


def load_rm_report(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
