"""Which reference probe corrects run-to-run drift best?

The measurement protocol divides a model's level by a probe's level measured in the
same window (``hwadapt.measure``). That only helps when host drift slows the model and
the probe alike. This measures, in ``--runs`` separate agent runs (a fresh agent and
fresh sessions each, ``--pause`` seconds apart), the full-width MobileNetV1 and V2 and a
few candidate probes in one interleaved window, and reports for each model the spread
(max vs min, %) of its raw level and of its level divided by each candidate's.

Prints a table and writes ``levels.csv`` (one row per run and model) and ``spread.csv``.

    python benchmarks/probe_choice.py --out benchmarks/results/probe_choice
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from device_agents import make_agent
from hwadapt.arch.families import build
from hwadapt.measure import measure_archs

MODELS = {"v1": ("mobilenet_v1", 1.0), "v2": ("mobilenet_v2", 1.0)}
PROBES = {"v1_x0.5 (default probe)": ("mobilenet_v1", 0.5), "v1_x0.25": ("mobilenet_v1", 0.25),
          "v2_x0.5": ("mobilenet_v2", 0.5)}


def levels(backend: str, resolution: int, runs: int, pause_s: float) -> pd.DataFrame:
    """Raw levels (before any probe correction) of every model and probe, per run."""
    named = {**MODELS, **PROBES}
    archs = [build(family, width=width, resolution=resolution, num_classes=10) for family, width in named.values()]
    rows = []
    for run in range(runs):
        with make_agent(backend, threads=1) as agent:
            measured = measure_archs(agent, archs)
        rows += [{"backend": backend, "px": resolution, "run": run, "model": name, "raw_ms": m.raw_ms}
                 for name, m in zip(named, measured)]
        time.sleep(pause_s)
    return pd.DataFrame(rows)


def spread_pct(values: pd.Series) -> float:
    return float((values.max() - values.min()) / values.min() * 100)


def spreads(frame: pd.DataFrame) -> pd.DataFrame:
    """Per model: raw spread, and spread after dividing by each other model's level."""
    wide = frame.pivot(index="run", columns="model", values="raw_ms")
    rows = []
    for model in MODELS:
        row = {"model": model, "raw": spread_pct(wide[model])}
        row |= {f"/ {other}": spread_pct(wide[model] / wide[other]) for other in wide.columns if other != model}
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/probe_choice"))
    parser.add_argument("--backends", nargs="+", default=["ort-cpu", "litert-cpu"])
    parser.add_argument("--resolutions", nargs="+", type=int, default=[32, 224])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pause", type=float, default=10.0, help="seconds between runs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    frames, tables = [], []
    for backend in args.backends:
        for resolution in args.resolutions:
            frame = levels(backend, resolution, args.runs, args.pause)
            frames.append(frame)
            table = spreads(frame).assign(backend=backend, px=resolution)
            tables.append(table)
            print(f"\n{backend} {resolution} px: spread over {args.runs} runs, %")
            print(table.drop(columns=["backend", "px"]).round(2).to_string(index=False), flush=True)
    pd.concat(frames).to_csv(args.out / "levels.csv", index=False)
    pd.concat(tables).to_csv(args.out / "spread.csv", index=False)


if __name__ == "__main__":
    main()
