"""Predictor accuracy: build each LUT, validate it on random architectures, and check
the repeatability of end-to-end measurements.

For every backend x family x resolution cell: the wall time to build the LUT (and to
validate it), the `hwadapt lut validate` metrics (and the naive sum's, on the same
measurements), the spread (max vs min) of one model measured in 5 separate agent runs
(probe-corrected, and raw), and how far the validation windows of one network disagree
(median over the networks: the host's noise during the cell; ``noisy``: how many
validation figures had windows further apart than ``hwadapt.measure.NOISY_PCT``, and
``max_spread_pct`` the widest). Prints a table and the count of noisy figures; writes CSV
(the summary, and per cell its validation measurements and its 5 repeat runs) and PNG.

    python benchmarks/predictor_accuracy.py --out benchmarks/results/predictor_accuracy

``--repeat-only DIR`` runs the repeatability check alone, on the tables an earlier run
left in DIR (``repeat_summary.csv`` and the per-cell repeat CSVs go to ``--out``).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from device_agents import make_agent
from hwadapt.arch import Arch
from hwadapt.cli.common import reporter
from hwadapt.families import build
from hwadapt.lut.plots import scatter_png
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.profile import build_lut
from hwadapt.lut.validate import summarise, validate
from hwadapt.measure import NOISY_PCT, kept_windows, measure_in_windows, median_window, spread_pct
from hwadapt.progress import QUIET, Reporter


def repeatability(predictor: LatencyPredictor, runs: int = 5, progress: Reporter = QUIET) -> pd.DataFrame:
    """The base network measured end to end (as every figure: the median of its windows)
    in ``runs`` separate agent runs on the table's target: probe-corrected, raw, the
    probe's level, and how many windows the run took (and the probe gate set aside)."""
    meta, target = predictor.meta, predictor.target
    arch = build(meta.family, resolution=meta.resolution, num_classes=meta.num_classes)
    found = []
    task = progress.start("repeat runs", total=runs)
    for _ in range(runs):
        with target.agent() as agent:
            target.check(agent)
            windows = measure_in_windows(agent, [arch], probe=target.probe())[0]
        m = median_window(windows)
        found.append({"ms": m.median_ms, "raw_ms": m.raw_ms, "probe_ms": m.probe_ms, "windows": len(windows),
                      "set_aside": len(windows) - len(kept_windows(windows))})
        progress.advance(task)
    progress.finish(task)
    return pd.DataFrame(found)


def repeat_figures(repeats: pd.DataFrame) -> dict[str, float]:
    """How far the repeat runs of :func:`repeatability` spread, probe-corrected and raw."""
    return {"repeat_spread_pct": spread_pct(repeats["ms"]), "raw_repeat_spread_pct": spread_pct(repeats["raw_ms"])}


def run_cell(backend: str, family: str, resolution: int, samples: int, out: Path, progress: Reporter) -> dict:
    lut = out / f"{backend}_{family}_{resolution}.parquet"
    progress.note(f"{backend} {family} {resolution} px: LUT -> {lut}")
    start = time.perf_counter()
    with make_agent(backend) as agent:
        build_lut(agent, family, resolution, lut, reporter=progress)
    build_s = time.perf_counter() - start
    predictor = LatencyPredictor.load(lut)
    start = time.perf_counter()
    report, rows = validate(predictor, samples, seed=1, reporter=progress)
    validate_s = time.perf_counter() - start
    rows.to_csv(out / f"{lut.stem}.validate.csv", index=False)
    scatter_png(rows, out / f"{lut.stem}.validate.png", f"{family} {resolution}px {backend}")
    naive_predictor = predictor.naive_sum()
    naive = summarise(np.array([naive_predictor.predict_ms(Arch.from_json(a)) for a in rows["arch"]]),
                      rows["measured_ms"].to_numpy())
    repeats = repeatability(predictor, progress=progress)
    repeats.to_csv(out / f"{lut.stem}.repeat.csv", index=False)
    return {"backend": backend, "family": family, "resolution": resolution, **report.to_dict(),
            "naive_within_10pct": naive.within_10pct, "naive_mape": naive.mape, "naive_bias_pct": naive.bias_pct,
            "lut_build_s": round(build_s, 1), "validate_s": round(validate_s, 1), **repeat_figures(repeats),
            "window_spread_pct": float(rows["pass_spread_pct"].median())}


def repeat_cells(tables: Path, out: Path, cells: list[tuple[str, int, str]]) -> None:
    """The repeatability check alone, on the stored table of every cell."""
    results = []
    with reporter() as progress:
        for backend, resolution, family in cells:
            stem = f"{backend}_{family}_{resolution}"
            repeats = repeatability(LatencyPredictor.load(tables / f"{stem}.parquet"), progress=progress)
            repeats.to_csv(out / f"{stem}.repeat.csv", index=False)
            results.append({"backend": backend, "family": family, "resolution": resolution,
                            **repeat_figures(repeats), "max_windows": int(repeats["windows"].max())})
            progress.note(pd.DataFrame(results[-1:]).to_string(index=False))
    pd.DataFrame(results).to_csv(out / "repeat_summary.csv", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/predictor_accuracy"))
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--backends", default="ort-cpu,litert-cpu")
    parser.add_argument("--families", default="mobilenet_v1,mobilenet_v2")
    parser.add_argument("--resolutions", default="32,224")
    parser.add_argument("--repeat-only", type=Path, metavar="DIR", help="repeatability alone, on the tables in DIR")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cells = [(backend, resolution, family) for backend in args.backends.split(",")
             for resolution in map(int, args.resolutions.split(",")) for family in args.families.split(",")]
    if args.repeat_only:
        repeat_cells(args.repeat_only, args.out, cells)
        return
    results = []
    with reporter() as progress:
        for backend, resolution, family in cells:
            results.append(run_cell(backend, family, resolution, args.samples, args.out, progress))
            progress.note(pd.DataFrame(results[-1:]).to_string(index=False))
    frame = pd.DataFrame(results)
    frame.to_csv(args.out / "summary.csv", index=False)
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
        print(frame.to_string(index=False))
    print(noisy_summary(frame))
    summary_png(frame, args.out / "summary.png")


def noisy_summary(frame: pd.DataFrame) -> str:
    """How many validation figures, over every cell, came from windows that disagreed by
    more than ``NOISY_PCT`` (the host was noisy while they were measured)."""
    noisy, total = int(frame["noisy"].sum()), int(frame["n"].sum())
    cells = int((frame["noisy"] > 0).sum())
    return (f"noisy validation figures (windows over {NOISY_PCT:g}% apart): {noisy} of {total}, in {cells} of "
            f"{len(frame)} cells; widest spread {frame['max_spread_pct'].max():.1f}%")


def summary_png(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.backend}\n{r.family}\n{r.resolution}px" for r in frame.itertuples()]
    x = np.arange(len(frame))
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(frame)), 4))
    ax.bar(x - 0.2, frame["within_5pct"] * 100, 0.4, label="within ±5%")
    ax.bar(x + 0.2, frame["within_10pct"] * 100, 0.4, label="within ±10%")
    ax.axhline(90, color="grey", ls="--", lw=1)
    ax.axhline(99, color="black", ls=":", lw=1)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set(ylabel="% of validation architectures", ylim=(0, 105), title="LUT predictor accuracy")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
