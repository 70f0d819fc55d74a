"""How well does one architecture's end-to-end measurement repeat?

`hwadapt lut validate` compares one prediction with one measurement per architecture.
If the same architecture, measured again in another window, lands several percent
away, no predictor can put 90% of validation architectures within ±5%. This measures
that floor: ``--archs`` random architectures of a family (the validation sample stream)
are measured in ``--runs`` separate agent runs (a fresh agent each, ``--pause`` seconds
apart, batches of 8 with the default probe, as validation does), once per measurement
plan: the agent's default plan, one with more rounds per model (``--long-rounds``, 0 for
none) and, with ``--min-inferences N``, one that times each model at least N times per window.

Per plan it reports the fraction of single measurements within ±5% / ±10% of their
architecture's median over the runs (what a predictor that knew every median exactly
would score), the median spread (max vs min over runs) per architecture, raw and
probe-corrected, and the wall time of one run.

Prints a table and writes ``levels.csv`` (one row per run, plan and architecture) and
``summary.csv`` under --out.

    python benchmarks/measurement_noise.py --out benchmarks/results/measurement_noise
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from device_agents import make_agent
from hwadapt.lut.validate import sample_archs
from hwadapt.measure import BATCH_SIZE, Probe, default_probe, measure_archs
from hwadapt.measure.protocol import MeasurePlan, default_plan


def plans_to_compare(default: MeasurePlan, long_rounds: int, min_inferences: int | None) -> dict[str, MeasurePlan]:
    plans = {"default": default}
    if long_rounds:
        plans[f"{long_rounds} rounds"] = replace(default, min_rounds=long_rounds, max_rounds=long_rounds,
                                                 time_cap_s=default.time_cap_s * long_rounds / default.min_rounds)
    if min_inferences is not None:
        plans[f"min {min_inferences} inferences"] = replace(default, min_inferences=min_inferences)
    return plans


def one_run(backend: str, archs: list, probe: Probe, long_rounds: int, min_inferences: int | None,
            run: int) -> list[dict]:
    """Measure every architecture once with each plan (their order alternating between
    runs); probe-corrected values are in probe units."""
    rows = []
    with make_agent(backend, threads=1) as agent:
        plans = plans_to_compare(default_plan(agent), long_rounds, min_inferences)
        for name in sorted(plans, reverse=bool(run % 2)):
            start, measured = time.perf_counter(), []
            for first in range(0, len(archs), BATCH_SIZE):
                measured += measure_archs(agent, archs[first:first + BATCH_SIZE], plan=plans[name], probe=probe)
            run_s = time.perf_counter() - start
            rows += [{"run": run, "plan": name, "arch": i, "raw_ms": m.raw_ms, "corrected": m.median_ms,
                      "run_s": run_s} for i, m in enumerate(measured)]
    return rows


def within(values: pd.Series, tolerance: float) -> float:
    return float((np.abs(values / values.median() - 1) <= tolerance).mean())


def summarise(levels: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for plan, frame in levels.groupby("plan", sort=False):
        per_arch = frame.groupby("arch")
        spread = {column: per_arch[column].agg(lambda v: (v.max() / v.min() - 1) * 100).median()
                  for column in ("raw_ms", "corrected")}
        rows.append({
            "plan": plan,
            "within_5pct": float(np.mean([within(v, 0.05) for _, v in per_arch["corrected"]])),
            "within_10pct": float(np.mean([within(v, 0.10) for _, v in per_arch["corrected"]])),
            "median_spread_pct": spread["corrected"], "median_raw_spread_pct": spread["raw_ms"],
            "run_s": frame.groupby("run")["run_s"].first().mean(),
        })
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/measurement_noise"))
    parser.add_argument("--backends", nargs="+", default=["ort-cpu", "litert-cpu"])
    parser.add_argument("--families", nargs="+", default=["mobilenet_v2"])
    parser.add_argument("--resolutions", nargs="+", type=int, default=[32, 224])
    parser.add_argument("--archs", type=int, default=16)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--long-rounds", type=int, default=48, help="rounds per model in the long plan (0: no such plan)")
    parser.add_argument("--min-inferences", type=int, help="add a plan timing each model at least this often per window")
    parser.add_argument("--pause", type=float, default=10.0, help="seconds between runs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    frames, tables = [], []
    for backend in args.backends:
        for family in args.families:
            for resolution in args.resolutions:
                archs = sample_archs(family, resolution, 10, args.archs, seed=1)
                probe = replace(default_probe(resolution), reference_ms=1.0)
                levels = []
                for run in range(args.runs):
                    levels += one_run(backend, archs, probe, args.long_rounds, args.min_inferences, run)
                    time.sleep(args.pause)
                cell = {"backend": backend, "family": family, "px": resolution}
                frames.append(pd.DataFrame(levels).assign(**cell))
                table = summarise(frames[-1]).assign(**cell)
                tables.append(table)
                print(f"\n{backend} {family} {resolution} px, {args.archs} architectures x {args.runs} runs")
                print(table.drop(columns=list(cell)).round(3).to_string(index=False), flush=True)
    pd.concat(frames).to_csv(args.out / "levels.csv", index=False)
    pd.concat(tables).to_csv(args.out / "summary.csv", index=False)


if __name__ == "__main__":
    main()
