"""LUT built through the loopback ADB device vs built directly with the desktop LiteRT agent.

Both tables are measured on this host with the same protocol and the same .tflite models:
once by the in-process ``litert-cpu`` agent (wall clock, median of runs), once by the
``android-cpu`` agent over the ADB wire protocol, where the loopback device runs the
LiteRT ``benchmark_model`` stand-in (mean of runs, one process per round). The ratio per
row shows what the phone path adds or loses. Prints a table; writes CSV.

    nice -n 19 python benchmarks/android_loopback_vs_desktop.py --out benchmarks/results/android_loopback
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from device_agents import make_agent
from device_agents.loopback import LoopbackDevice
from hwadapt.arch import Arch, Block
from hwadapt.cli.common import reporter
from hwadapt.families import FAMILIES, family
from hwadapt.lut.profile import build_lut
from hwadapt.lut.store import ROW_KEY, load_lut
from hwadapt.measure import MeasurePlan
from hwadapt.progress import Reporter

SMALL_FAMILY = "loopback_bench"


@family(SMALL_FAMILY)
def loopback_bench(*, width: float = 1.0, resolution: int = 112, num_classes: int = 10) -> Arch:
    """A stem and one depthwise-separable block: a LUT of a few dozen rows, minutes to build."""
    blocks = (Block("conv", 16, kernel=3, stride=2), Block("dwsep", 32, kernel=3, stride=1))
    return Arch(SMALL_FAMILY, resolution, num_classes, blocks, act="relu", meta={"width": width})


def build(backend: str, out: Path, args: argparse.Namespace, progress: Reporter, **options) -> float:
    plan = MeasurePlan(fixed_runs=args.runs, warmup_runs=0, min_rounds=args.rounds, max_rounds=args.rounds,
                       rel_tol=1.0, time_cap_s=60.0)
    progress.note(f"{out.stem}: {backend} -> {out}")
    start = time.perf_counter()
    with make_agent(backend, threads=1, **options) as agent:
        build_lut(agent, args.family, args.resolution, out, calibration_models=1, plan=plan, reporter=progress)
    return time.perf_counter() - start


def compare(desktop: pd.DataFrame, android: pd.DataFrame, desktop_again: pd.DataFrame) -> pd.DataFrame:
    """Per row: loopback / desktop, and desktop-again / desktop (the host's noise floor)."""
    merged = desktop.merge(android, on=ROW_KEY, suffixes=("_desktop", "_android"))
    merged["probe_ratio"] = merged["probe_ms_android"] / merged["probe_ms_desktop"]
    merged = merged.merge(desktop_again[ROW_KEY + ["ms", "raw_ms"]].rename(
        columns={"ms": "ms_desktop_again", "raw_ms": "raw_ms_desktop_again"}), on=ROW_KEY)
    merged["ratio"] = merged["ms_android"] / merged["ms_desktop"]
    merged["raw_ratio"] = merged["raw_ms_android"] / merged["raw_ms_desktop"]
    merged["noise_ratio"] = merged["ms_desktop_again"] / merged["ms_desktop"]
    return merged[ROW_KEY[:-1] + ["ms_desktop", "ms_android", "ms_desktop_again", "ratio", "raw_ratio",
                                  "noise_ratio", "probe_ms_desktop", "probe_ms_android", "probe_ratio"]]


def _spread(values: pd.Series) -> list[str]:
    return [f"{values.median():.3f}", f"{values.quantile(0.1):.3f}-{values.quantile(0.9):.3f}"]


def summary_table(rows: pd.DataFrame, seconds: dict[str, float]) -> Table:
    table = Table("kind", "rows", "loop/desk", "p10-p90", "raw", "desk2/desk", "p10-p90",
                  title=f"android-cpu via loopback vs litert-cpu direct (build s: desktop {seconds['desktop']:.0f}, "
                        f"loopback {seconds['android']:.0f})")
    groups = [(kind, group) for kind, group in rows.groupby("kind")] + [("all", rows)]
    for kind, group in groups:
        table.add_row(kind, str(len(group)), *_spread(group["ratio"]), f"{group['raw_ratio'].median():.3f}",
                      *_spread(group["noise_ratio"]))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/android_loopback"))
    parser.add_argument("--family", default=SMALL_FAMILY, choices=sorted(FAMILIES))
    parser.add_argument("--resolution", type=int, default=112,
                        help="large enough that ops take tens of µs: benchmark_model reports whole µs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20, help="inferences per round (benchmark_model --num_runs)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    seconds = {}
    luts = {name: args.out / f"{name}.parquet" for name in ("desktop", "android", "desktop_again")}
    for path in luts.values():  # a fresh measurement each time, never a resumed table
        for stale in (path, path.with_suffix(".json"), path.with_suffix(".journal.jsonl")):
            stale.unlink(missing_ok=True)
    with reporter() as progress:
        seconds["desktop"] = build("litert-cpu", luts["desktop"], args, progress, clock="wall")
        with LoopbackDevice(port=0) as device:
            seconds["android"] = build("android-cpu", luts["android"], args, progress,
                                       device=f"tcp:{device.serial}", energy_secs=0)
        build("litert-cpu", luts["desktop_again"], args, progress, clock="wall")
    tables = [load_lut(path) for path in luts.values()]
    rows = compare(*(frame for _, frame in tables))
    references = ", ".join(f"{name} {meta.reference_ms:.4f}" for name, (meta, _) in zip(luts, tables))
    rows.to_csv(args.out / "rows.csv", index=False)
    Console(width=120).print(summary_table(rows, seconds))
    print(f"probe reference levels (ms): {references}")
    print(f"host load average {os.getloadavg()[0]:.2f}; wrote {args.out / 'rows.csv'} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
