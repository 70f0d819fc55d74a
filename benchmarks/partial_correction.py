"""Would a partial probe correction repeat better? Re-reads stored runs, measures nothing.

Every end-to-end figure is a model's level over the probe's level in the same window,
times the probe's reference level: ``raw x (reference / probe)``. When the host slows a
model less than the probe (or more), a share ``beta`` of the probe's deviation,
``raw x (reference / probe) ** beta``, might fit better. This takes the 5 repeat agent
runs that ``predictor_accuracy.py`` stored per cell (``*.repeat.csv``: raw and probe
levels; the reference from the table's sidecar) and reports, per beta, in how many cells
the spread (max vs min) stays within ``--target`` %, and its median and maximum.

    python benchmarks/partial_correction.py benchmarks/results/predictor_accuracy_run1[6-9] \\
        benchmarks/results/predictor_accuracy_run2[0-4] --out benchmarks/results/partial_correction
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from probe_choice import spread_pct  # a sibling script: benchmarks/ is on the path

BETAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)


def repeat_spreads(run_dir: Path, betas: tuple[float, ...] = BETAS) -> pd.DataFrame:
    """Per cell of one stored run and per beta, the spread of its 5 repeat runs, in %."""
    rows = []
    for repeat_csv in sorted(run_dir.glob("*.repeat.csv")):
        cell = repeat_csv.name.removesuffix(".repeat.csv")
        reference = json.loads((run_dir / f"{cell}.json").read_text())["reference_ms"]
        runs = pd.read_csv(repeat_csv)
        for beta in betas:
            levels = runs["raw_ms"] * (reference / runs["probe_ms"]) ** beta
            rows.append({"run": run_dir.name, "cell": cell, "beta": beta,
                         "spread_pct": spread_pct(levels)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="predictor_accuracy.py output folders")
    parser.add_argument("--target", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/partial_correction"))
    args = parser.parse_args()
    spreads = pd.concat([repeat_spreads(run) for run in args.runs])
    table = spreads.groupby("beta")["spread_pct"].agg(
        cells="size", within_target=lambda s: int((s <= args.target).sum()), median="median", max="max").round(2)
    args.out.mkdir(parents=True, exist_ok=True)
    spreads.round(2).to_csv(args.out / "spreads.csv", index=False)
    table.to_csv(args.out / "summary.csv")
    print(table.to_string())


if __name__ == "__main__":
    main()
