"""Would a probe gate repeat better? An interleaved A/B of end-to-end repeatability.

A (the protocol, ``hwadapt.measure.measure_in_windows``): the median of 3-7 windows,
each probe-corrected. B (a candidate, not in the library): a window whose probe level is
more than ``--deviation`` % off the table's probe reference is set aside and another
window taken, up to 7; the median is over the windows within the deviation, or over all
of them if fewer than 3 were. Per table given, the full-width model is measured in 5
separate agent runs under A and under B, alternating which goes first, ``--reps`` times.
Prints each set's spread (max vs min, %) and the paired comparison; writes
``runs.csv`` (every agent run) and ``spreads.csv`` under --out.

    python benchmarks/probe_gate.py benchmarks/results/predictor_accuracy_run24/*_224.parquet \\
        --reps 6 --out benchmarks/results/probe_gate
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
from hwadapt.measure import MAX_WINDOWS, WINDOWS, Probe, measure_arch, measure_in_windows, median_level
from probe_choice import spread_pct  # a sibling script: benchmarks/ is on the path


def protocol_level(agent: DeviceAgent, arch: Arch, probe: Probe) -> tuple[float, int]:
    windows = measure_in_windows(agent, [arch], probe=probe)[0]
    return median_level([m.median_ms for m in windows]), len(windows)


def gated_level(agent: DeviceAgent, arch: Arch, probe: Probe, deviation_pct: float) -> tuple[float, int]:
    levels, within = [], []
    while len(levels) < MAX_WINDOWS and len(within) < WINDOWS:
        m = measure_arch(agent, arch, probe=probe)
        levels.append(m.median_ms)
        if abs(m.probe_ms / probe.reference_ms - 1) * 100 <= deviation_pct:
            within.append(m.median_ms)
    return median_level(within if len(within) >= WINDOWS else levels), len(levels)


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
                        level, windows = (protocol_level(agent, arch, probe) if protocol == "A"
                                          else gated_level(agent, arch, probe, args.deviation))
                    runs.append({"rep": rep, "cell": lut.stem, "protocol": protocol, "run": run, "ms": level,
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
