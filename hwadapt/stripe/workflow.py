"""``hwadapt stripe`` as a library call: stripe-wise pruning from scratch or from a
checkpoint, then the pruned network in every export form, each checked against the
masked PyTorch network on real images, priced by each LUT given (which picks the cheapest form
per layer: the ``best-BACKEND`` form) and measured end to end on the desktop agents, the whole
network and each layer alone.

Folder layout::

    job.json            what this run is (a folder holding another is refused)
    train/              the skeleton network, per epoch (re-run to resume)
    pruned/             the folded network: a plain checkpoint, dead stripes zero
    exports/            FORM.onnx, FORM.tflite
    measured-BACKEND.json   each backend's figures, once taken
    report.json
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from device_agents import make_agent
from hwadapt.adapt.workflow import claim, file_identity, subsets
from hwadapt.arch.lowering import lower
from hwadapt.data import Splits, batches, load_dataset
from hwadapt.data.splits import HOLDOUT_FRACTION
from hwadapt.families import build
from hwadapt.lut.calibrate import weight_mb
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.materialize import FORMATS, save_ops
from hwadapt.materialize.op_graph import OpGraph
from hwadapt.materialize.run import run_model
from hwadapt.materialize.torch_net import WEIGHTS_FILE, Net, load_checkpoint, save_checkpoint
from hwadapt.materialize.weights import OpWeights, folded_weights
from hwadapt.measure import WINDOWS, EndToEnd, default_probe, graph_writer, measure_models_in_windows, noisy_note
from hwadapt.ops import Op
from hwadapt.progress import QUIET, Reporter
from hwadapt.stripe.forms import FORMS, Layer, layer_forms, macs, network_form, pruned_layers, pruned_macs, standalone
from hwadapt.stripe.report import REPORT_FILE, FormFigures, LayerFigures, StripeReport
from hwadapt.stripe.skeleton import SkeletonSettings, StripeError, alive_masks, attach, folded
from hwadapt.train import TrainConfig, fit
from hwadapt.train.device import resolve_device

DESKTOP_BACKENDS = ("ort-cpu", "litert-cpu")
STRIPE_FORMS = ("kconv", "stripes", "tapsum")  # the op kinds whose stand-ins a LUT needs to price the forms
LAYER_WINDOWS = 3  # windows behind each layer's figure (a layer alone is a small model: many in one window)
Graph = tuple[list[Op], OpWeights]


@dataclass(frozen=True)
class StripeJob:
    """What ``hwadapt stripe`` is asked: a family (from scratch) or a checkpoint, the data,
    the training and the skeleton's settings, and how to price and measure the forms."""

    out: Path
    data: str
    train: TrainConfig
    skeleton: SkeletonSettings = SkeletonSettings()
    family: str | None = None
    width: float = 1.0
    resolution: int = 32
    checkpoint: Path | None = None
    luts: tuple[Path, ...] = ()  # one per backend at most; none: the forms are measured, not priced
    backends: tuple[str, ...] = DESKTOP_BACKENDS
    windows: int = WINDOWS
    images: int = 64  # test images the forms are compared on
    train_images: int | None = None  # a stratified subset of the training images (a CPU budget)
    holdout: float = HOLDOUT_FRACTION
    layers: bool = True  # measure each layer's forms alone too
    device: str = "auto"  # where it trains


def starting_network(job: StripeJob, trained: Net | None, num_classes: int) -> tuple[Net, str]:
    """The network to prune (the checkpoint's ``trained``, or an untrained one of the
    family) and where it came from."""
    if trained is not None:
        if job.family and job.family != trained.arch.family:
            raise StripeError(f"--family {job.family} but {job.checkpoint} holds a {trained.arch.family}")
        return trained, str(job.checkpoint)
    if not job.family:
        raise StripeError("give --family (to train from scratch) or --checkpoint (to prune a trained network)")
    return Net(build(job.family, width=job.width, resolution=job.resolution, num_classes=num_classes)), "scratch"


def pricing_tables(luts: tuple[Path, ...], net: Net) -> dict[str, LatencyPredictor]:
    """Each LUT's predictor by its backend, checked to fit the network and to price the
    stripe forms."""
    predictors: dict[str, LatencyPredictor] = {}
    for lut in luts:
        predictor = LatencyPredictor.load(lut)
        predictor.check(net.arch)
        missing = sorted(set(STRIPE_FORMS) - set(predictor.meta.forms))
        if missing:
            raise StripeError(f"{lut} cannot price the stripe forms (no {', '.join(missing)} rows): rebuild it with "
                              f"`hwadapt profile ... --forms {','.join(STRIPE_FORMS)}`")
        if predictor.meta.backend in predictors:
            raise StripeError(f"two LUTs of {predictor.meta.backend}: give one per backend")
        predictors[predictor.meta.backend] = predictor
    return predictors


def job_identity(job: StripeJob, net: Net, splits: Splits) -> dict[str, Any]:
    source = file_identity(job.checkpoint / WEIGHTS_FILE) if job.checkpoint else "scratch"
    return {"arch": net.arch.to_dict(), "source": source, "data": splits.source, "holdout": job.holdout,
            "train_images": job.train_images, "train": dataclasses.asdict(job.train),
            "skeleton": dataclasses.asdict(job.skeleton), "luts": [file_identity(lut) for lut in job.luts],
            "backends": list(job.backends), "windows": job.windows, "images": job.images, "layers": job.layers}


def run_stripe(job: StripeJob, reporter: Reporter = QUIET) -> StripeReport:
    """Prune, export, check, price and measure (or resume: training per epoch, each
    backend's measurements once taken); writes and returns ``report.json``."""
    trained = load_checkpoint(job.checkpoint)[0] if job.checkpoint is not None else None
    resolution = trained.arch.resolution if trained is not None else job.resolution
    splits = subsets(load_dataset(job.data, resolution, seed=job.train.seed, holdout_fraction=job.holdout),
                     job.train_images, None, job.train.seed)
    net, source = starting_network(job, trained, splits.num_classes)
    if splits.num_classes != net.arch.num_classes:
        raise StripeError(f"{job.data} has {splits.num_classes} classes, the network {net.arch.num_classes}")
    predictors = pricing_tables(job.luts, net)
    identity = job_identity(job, net, splits)
    claim(job.out, identity, "a stripe run")
    if (job.out / REPORT_FILE).is_file():
        return StripeReport.load(job.out / REPORT_FILE)
    net = attach(net, job.skeleton).to(resolve_device(job.device))
    summary = fit(net, splits, job.train, job.out / "train", identity={"source": identity["source"],
                  "data": splits.source, "skeleton": identity["skeleton"]}, reporter=reporter)
    net = net.cpu().eval()
    plain, masks = folded(net), alive_masks(net)
    save_checkpoint(plain, job.out / "pruned", {"alive": masks})
    layers = pruned_layers(plain, masks)
    ops, weights = lower(plain.arch), folded_weights(plain)
    choices = {backend: cheapest_forms(predictor, layers, ops) for backend, predictor in predictors.items()}
    forms = network_forms(ops, weights, layers, choices)
    x = test_images(splits, job.images)
    with torch.no_grad():
        expected = net(x).numpy()
    diffs, exports = check_forms(forms, x, expected, job.out / "exports")
    measured = {backend: measured_on(job, backend, forms, layers, predictors.get(backend), reporter)
                for backend in job.backends}
    report = StripeReport(
        family=net.arch.family, width=net.arch.meta.get("width"), source=source, data=splits.source,
        epochs=job.train.epochs, sr=job.skeleton.sr, threshold=job.skeleton.threshold,
        stripe_sparsity=1 - sum(m.sum().item() for m in masks.values()) / sum(m.numel() for m in masks.values()),
        flops_reduction=1 - pruned_macs(ops, layers) / sum(map(macs, ops)), macs_dense=sum(map(macs, ops)),
        macs_pruned=pruned_macs(ops, layers), test_accuracy=float(summary["test_accuracy"]), images=len(x),
        output_scale=float(np.abs(expected).max()),
        forms=form_figures(forms, diffs, measured, predictors),
        layers=layer_figures(layers, choices, predictors, ops, measured),
        bypassed=[layer.name for layer in layers if not layer.stripes], luts=[str(lut) for lut in job.luts],
        backends=list(job.backends), exports={"checkpoint": str(job.out / "pruned"), **exports},
        notes=notes(layers, measured))
    for line in report.notes:
        reporter.note(line)
    report.save(job.out / REPORT_FILE)
    return report


def test_images(splits: Splits, count: int) -> torch.Tensor:
    """The first ``count`` test images, normalised as training saw them."""
    return next(iter(batches(splits.test, splits, count)))[0]


def layer_parts(predictor: LatencyPredictor, layer: Layer, network_mb: float) -> dict[str, dict[str, float]]:
    """Each form of a layer priced by the LUT, op by op (by kind): the ops' standalone times
    as the table measured them. Not their calibrated costs: the calibration is fitted on
    whole networks of the family, where a form's extra small ops never appear, and on a
    fixed-depth family its terms trade off freely (ONNX Runtime's VGG-16 table fitted a
    concave term that priced every small op below zero)."""
    table = predictor.naive_sum()
    return {form: {op.kind: table.op_cost(op, network_mb)[0] for op in standalone(layer, form)[0]}
            for form in layer_forms(layer)}


def layer_prices(predictor: LatencyPredictor, layer: Layer, network_mb: float) -> dict[str, float]:
    """Each form of a layer priced by the LUT (:func:`layer_parts`)."""
    return {form: sum(parts.values()) for form, parts in layer_parts(predictor, layer, network_mb).items()}


def cheapest_forms(predictor: LatencyPredictor, layers: list[Layer], ops: list[Op]) -> dict[str, str]:
    """The form the LUT prices lowest, per live layer (:func:`layer_prices`)."""
    network_mb = sum(map(weight_mb, ops))
    prices = {layer.name: layer_prices(predictor, layer, network_mb) for layer in layers if layer.stripes}
    return {name: min(options, key=options.get) for name, options in prices.items()}


def network_forms(ops: list[Op], weights: OpWeights, layers: list[Layer],
                  choices: dict[str, dict[str, str]]) -> dict[str, Graph]:
    """The network in each form: dense as lowered; every layer in one of the other forms
    (dense where that one does not apply); and per LUT, ``best-BACKEND``: each layer in
    the form that LUT prices lowest."""
    forms = {"dense": (ops, weights)}
    for form in FORMS[1:]:
        forms[form] = network_form(ops, weights, layers, lambda layer, form=form: form)
    for backend, chosen in choices.items():
        forms[f"best-{backend}"] = network_form(ops, weights, layers, lambda layer, chosen=chosen: chosen[layer.name])
    return forms


def check_forms(forms: dict[str, Graph], x: torch.Tensor, expected: np.ndarray,
                folder: Path) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Each form's largest absolute difference from ``expected`` in PyTorch, ONNX Runtime
    and LiteRT, and its exported files."""
    diffs, files = {}, {}
    for name, (ops, weights) in forms.items():
        with torch.no_grad():
            outputs = {"pytorch": OpGraph(ops, weights)(x).numpy()}
        for fmt in FORMATS:
            files[f"{name}.{fmt}"] = str(save_ops(ops, weights, fmt, folder / f"{name}.{fmt}"))
            outputs[fmt] = run_model(files[f"{name}.{fmt}"], x.numpy())
        diffs[name] = {runtime: float(np.abs(got - expected).max()) for runtime, got in outputs.items()}
    return diffs, files


def measured_on(job: StripeJob, backend: str, forms: dict[str, Graph], layers: list[Layer],
                predictor: LatencyPredictor | None, reporter: Reporter) -> dict[str, Any]:
    """Each network form measured end to end on ``backend`` (and each live layer's forms
    alone), in windows; kept in ``measured-BACKEND.json`` once taken."""
    path = job.out / f"measured-{backend}.json"
    if path.is_file():
        return json.loads(path.read_text())
    same_table = predictor is not None and predictor.meta.backend == backend
    threads = int(predictor.meta.fingerprint.get("threads", 1)) if same_table else 1
    # on the LUT's backend, on its time base (so prices and measurements compare); elsewhere
    # each window on its own probe level: forms are compared within the same windows
    probe = predictor.target.probe() if same_table else default_probe(forms["dense"][0][0].size)
    reporter.note(f"measuring {len(forms)} network forms on {backend} ...")
    with make_agent(backend, threads=threads) as agent:
        networks = [EndToEnd.of(w) for w in measure_models_in_windows(
            agent, [graph_writer(*graph) for graph in forms.values()], probe=probe, windows=job.windows)]
        alone = [(layer.name, form) for layer in layers if layer.stripes and job.layers for form in layer_forms(layer)]
        by_name = {layer.name: layer for layer in layers}
        if alone:
            reporter.note(f"measuring {len(alone)} layer forms alone on {backend} ...")
        writers = [graph_writer(*standalone(by_name[name], form)) for name, form in alone]
        found = measure_models_in_windows(agent, writers, probe=probe,
                                          windows=min(job.windows, LAYER_WINDOWS)) if alone else []
    layer_ms: dict[str, dict[str, float]] = {}
    for (name, form), windows in zip(alone, found):
        layer_ms.setdefault(name, {})[form] = EndToEnd.of(windows).ms
    result = {"networks": {name: {"ms": f.ms, "spread_pct": f.spread_pct} for name, f in zip(forms, networks)},
              "layers": layer_ms, "noisy": noisy_note(networks)}
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def form_figures(forms: dict[str, Graph], diffs: dict[str, dict[str, float]], measured: dict[str, Any],
                 predictors: dict[str, LatencyPredictor]) -> dict[str, FormFigures]:
    figures = {}
    for name, (ops, _) in forms.items():
        ms = {backend: m["networks"][name]["ms"] for backend, m in measured.items()}
        figures[name] = FormFigures(
            ops=len(ops), macs=sum(map(macs, ops)), max_abs_diff=diffs[name], measured_ms=ms,
            spread_pct={backend: m["networks"][name]["spread_pct"] for backend, m in measured.items()},
            predicted_ms={backend: predictor.price(ops).total_ms for backend, predictor in predictors.items()},
            speedup={backend: m["networks"]["dense"]["ms"] / ms[backend] for backend, m in measured.items()})
    return figures


def layer_figures(layers: list[Layer], choices: dict[str, dict[str, str]], predictors: dict[str, LatencyPredictor],
                  ops: list[Op], measured: dict[str, Any]) -> list[LayerFigures]:
    network_mb = sum(map(weight_mb, ops))
    figures = []
    for layer in layers:
        op = layer.op
        _, _, rows, cols = layer.window() if layer.stripes else (0, 0, 0, 0)
        figures.append(LayerFigures(
            name=layer.name, shape=f"{op.cin}->{op.cout} k{op.kernel} s{op.stride} at {op.size}px",
            stripes=layer.stripes, total=layer.total, window=f"{rows}x{cols}" if layer.stripes else "-",
            forms=list(layer_forms(layer)) if layer.stripes else [],
            chosen={backend: chosen[layer.name] for backend, chosen in choices.items() if layer.stripes},
            predicted_ms={backend: layer_prices(predictor, layer, network_mb) for backend, predictor in
                          predictors.items()} if layer.stripes else {},
            predicted_parts_ms={backend: layer_parts(predictor, layer, network_mb) for backend, predictor in
                                predictors.items()} if layer.stripes else {},
            measured_ms={backend: m["layers"].get(layer.name, {}) for backend, m in measured.items()}))
    return figures


def notes(layers: list[Layer], measured: dict[str, Any]) -> list[str]:
    lines = [m["noisy"] for m in measured.values() if m.get("noisy")]
    strided = [layer.name for layer in layers if layer.op.stride > 1 and layer.stripes]
    if strided:
        lines.append(f"the stripe form of {', '.join(strided)} (stride 2) computes its maps at the input side, "
                     "4x the positions it keeps, as the authors' form does")
    return lines
