"""``hwadapt profile``, ``hwadapt families`` and ``hwadapt lut show|validate``."""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer
from rich.table import Table

from hwadapt.cli.common import RAY_ADDRESS_HELP, console, reporter, setup_logging
from hwadapt.lut.calibration_set import CALIBRATION_MODELS, LARGE_INPUT_MODELS, LARGE_INPUT_PX


class Backend(str, Enum):
    ort_cpu = "ort-cpu"
    litert_cpu = "litert-cpu"
    android_cpu = "android-cpu"
    android_gpu = "android-gpu"


def profile(
    backend: list[Backend] = typer.Option(..., help="Measurement target; repeat it for several (one LUT each)."),
    family: str = typer.Option(..., help="Model family or search space, e.g. mobilenet_v1."),
    resolution: int = typer.Option(..., help="Input side in pixels."),
    out: Path = typer.Option(..., help="Output LUT (.parquet; a .json sidecar is written beside it); with several "
                             "targets, a folder for <backend>[_<device>]_<family>_<px>.parquet."),
    threads: int = typer.Option(1, help="Inference threads."),
    num_classes: int = typer.Option(10, help="Classifier outputs of the networks to price."),
    calibration_models: int | None = typer.Option(
        None, help=f"Whole random-width networks measured to calibrate (default: {CALIBRATION_MODELS}; "
                   f"{LARGE_INPUT_MODELS} from {LARGE_INPUT_PX} px)."),
    device: list[str] = typer.Option(None, help="Android device: usb:SERIAL or tcp:HOST:PORT; repeat it for "
                                     "several phones (one LUT each)."),
    benchmark_binary: Path = typer.Option(None, help="benchmark_model binary to push to the phone."),
    energy_secs: float = typer.Option(0.0, help="Android: seconds of inference per row to read energy "
                                                "from the fuel gauge (0: no energy column)."),
    seed: int = typer.Option(0),
    forms: str = typer.Option("", help="Also measure the stand-in ops of these export forms, comma-separated op "
                                       "kinds (kconv,stripes,tapsum: what `hwadapt stripe` prices)."),
    workers: int = typer.Option(None, min=1, help="Profile this many devices at once on Ray workers (the "
                                "desktop backends share this machine's CPU and always take turns)."),
    ray_address: str = typer.Option(None, help=RAY_ADDRESS_HELP),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every measured row."),
) -> None:
    """Measure the LUT of a family at a resolution on one or more targets (resumes an interrupted run)."""
    from hwadapt.cluster import make_executor
    from hwadapt.families import get_family
    from hwadapt.lut.fleet import ProfileSpec, plan_targets, profile_targets

    setup_logging(verbose)
    get_family(family)
    targets = plan_targets([b.value for b in backend], device or [], out, family, resolution)
    phone = {"energy_secs": energy_secs} | ({"benchmark_binary": benchmark_binary} if benchmark_binary else {})
    spec = ProfileSpec(family, resolution, num_classes, calibration_models, seed, threads, phone,
                       forms=tuple(f for f in forms.split(",") if f))
    with reporter() as progress, make_executor(workers, ray_address, reporter=progress) as executor:
        for summary in profile_targets(spec, targets, executor):
            fit = summary["fit_mape"]
            where = f" on {summary['device']}" if summary["device"] else ""
            progress.note(f"wrote {summary['out']} ({summary['backend']}{where}, {summary['rows']} rows)"
                          + (f"; calibration on {summary['models']} models, in-sample MAPE {fit:.2f}%"
                             if fit is not None else ""))


def families() -> None:
    """List the model families a LUT can be built for and networks trained in."""
    from hwadapt.families import FAMILIES

    table = Table("family", "description")
    for name, family in sorted(FAMILIES.items()):
        table.add_row(name, family.description)
    console.print(table)


def show(path: Path = typer.Argument(..., help="LUT parquet file."),
         heatmap: Path = typer.Option(None, help="Heatmap PNG (default: next to the table).")) -> None:
    """Summarise a LUT and draw latency heatmaps over (in, out) channels."""
    from hwadapt.lut.lookup import OpLookup
    from hwadapt.lut.plots import heatmap_png
    from hwadapt.lut.store import load_lut

    meta, frame = load_lut(path)
    fp = meta.fingerprint
    console.print(f"[bold]{path}[/]: {meta.family} @ {meta.resolution}px, {meta.num_classes} classes, "
                  f"backend {meta.backend} ({fp.get('runtime')} {fp.get('runtime_version')}, "
                  f"{fp.get('threads')} thread(s), {fp.get('delegate')}) on {fp.get('device')}")
    console.print(f"probe reference {meta.reference_ms:.4f} ms; calibration {json.dumps(meta.calibration)}")
    ops = frame[frame["kind"] != "model"]
    table = Table("kind", "size", "kernel", "stride", "points", "min ms", "max ms", "throttled")
    for key, group in ops.groupby(["kind", "size", "kernel", "stride"]):
        table.add_row(*map(str, key), str(len(group)), f"{group['ms'].min():.4f}", f"{group['ms'].max():.4f}",
                      str(int(group["throttled"].fillna(False).sum())))
    models = frame[frame["kind"] == "model"]
    table.add_row("model", str(meta.resolution), "", "", str(len(models)),
                  f"{models['ms'].min():.4f}" if len(models) else "", f"{models['ms'].max():.4f}" if len(models) else "", "")
    console.print(table)
    if frame["energy_mj"].notna().any():
        console.print(f"energy measured on {int(frame['energy_mj'].notna().sum())} rows")
    png = heatmap or path.with_suffix(".heatmap.png")
    heatmap_png(OpLookup(frame, meta.periods), png, f"{meta.family} {meta.resolution}px on {meta.backend}")
    console.print(f"heatmap: {png}")


def validate_cmd(path: Path = typer.Argument(..., help="LUT parquet file."),
                 samples: int = typer.Option(50, min=1, help="Random architectures to measure."),
                 seed: int = typer.Option(0),
                 as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
                 png: Path = typer.Option(None, help="Scatter PNG (default: next to the table)."),
                 force: bool = typer.Option(False, help="Use the LUT even if this target's fingerprint differs.")) -> None:
    """Predict random architectures of the LUT's family and compare with end-to-end measurements."""
    from hwadapt.lut.plots import scatter_png
    from hwadapt.lut.predictor import LatencyPredictor
    from hwadapt.lut.validate import validate
    from hwadapt.measure import NOISY_PCT

    predictor = LatencyPredictor.load(path, force=force)
    with reporter(quiet=as_json) as progress:
        report, rows = validate(predictor, samples, seed, reporter=progress)
    out_png = png or path.with_suffix(".validate.png")
    scatter_png(rows, out_png, f"{predictor.meta.family} {predictor.meta.resolution}px {predictor.meta.backend}")
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    table = Table("metric", "value")
    for name, value in report.to_dict().items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    if report.noisy:
        console.print(f"the host was noisy: {report.noisy} of {report.n} figures had windows up to "
                      f"{report.max_spread_pct:.1f}% apart (over {NOISY_PCT:g}%); those figures are less certain")
    console.print(f"scatter: {out_png}")
