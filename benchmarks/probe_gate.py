"""Does the probe gate repeat better? An interleaved A/B of end-to-end repeatability.

A: the median of 3-7 windows, each probe-corrected, every window counted
(``hwadapt.measure.measure_in_windows`` with ``gate_pct=None``, the protocol until
session 13). B: the same with the probe gate (``gate_pct``, the protocol since): a window
whose probe level is more than ``--deviation`` % off the table's probe reference is set
aside and more windows are taken, up to 7; the median is over the windows within the
gate, or over all of them if fewer than 3 were. Per table given, the full-width model
is measured in 5 separate agent runs under A and under B, alternating which goes first,
``--reps`` times. Prints each set's spread (max vs min, %) and the paired comparison;
writes ``runs.csv`` (every agent run) and ``spreads.csv`` under --out.

    python benchmarks/probe_gate.py benchmarks/results/predictor_accuracy_run25/*.parquet \\
        --reps 4 --out benchmarks/results/probe_gate_run25
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from scipy.stats import wilcoxon

from device_agents.base import DeviceAgent
from hwadapt.arch.families import build
from hwadapt.arch.spec import Arch
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.measure import Probe, measure_in_windows, median_window
from probe_choice import spread_pct  # a sibling script: benchmarks/ is on the path


def level(agent: DeviceAgent, arch: Arch, probe: Probe, gate_pct: float | None) -> tuple[float, int]:
    """The end-to-end figure under a gate (None: none), and how many windows it took."""
    windows = measure_in_windows(agent, [arch], probe=probe, gate_pct=gate_pct)[0]
    return median_window(windows, gate_pct).median_ms, len(windows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("luts", type=Path, nargs="+")
    parser.add_argument("--deviation", type=float, default=4.0)
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/probe_gate"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    predictors = [LatencyPredictor.load(lut) for lut in args.luts]
    runs = []
    for rep in range(args.reps):
        for lut, predictor in zip(args.luts, predictors):
            meta, probe = predictor.meta, predictor.probe()
            arch = build(meta.family, resolution=meta.resolution, num_classes=meta.num_classes)
            for protocol in ("A", "B") if rep % 2 == 0 else ("B", "A"):
                for run in range(5):
                    with predictor.make_agent() as agent:
                        ms, windows = level(agent, arch, probe, None if protocol == "A" else args.deviation)
                    runs.append({"rep": rep, "cell": lut.stem, "protocol": protocol, "run": run, "ms": ms,
                                 "windows": windows})
            pd.DataFrame(runs).to_csv(args.out / "runs.csv", index=False)
    frame = pd.DataFrame(runs)
    spreads = frame.groupby(["cell", "rep", "protocol"])["ms"].agg(spread_pct).unstack("protocol")
    spreads.round(2).to_csv(args.out / "spreads.csv")
    print(spreads.round(2).to_string())
    print(f"sets: {len(spreads)}; within 3%: A {(spreads['A'] <= 3).sum()}, B {(spreads['B'] <= 3).sum()}; "
          f"mean spread A {spreads['A'].mean():.2f}%, B {spreads['B'].mean():.2f}%; B lower in "
          f"{(spreads['B'] < spreads['A']).sum()}; Wilcoxon p = {wilcoxon(spreads['A'], spreads['B']).pvalue:.3f}; "
          f"windows per run A {frame[frame.protocol == 'A'].windows.mean():.2f}, "
          f"B {frame[frame.protocol == 'B'].windows.mean():.2f}")


if __name__ == "__main__":
    main()
