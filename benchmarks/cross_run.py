"""Table or measurement: which one a cell's misses come from, by crossing two runs.

Two runs of `predictor_accuracy.py` validate the same 40 architectures per cell (the
seed is fixed). Each run's table predicts both runs' measurements, and the two runs'
measurements are set against each other. Every figure is given as measured and with the
pair's level ratio taken out (each prediction scaled by the median measured/predicted
ratio), because two tables built hours apart can sit on different time bases (each on
its own probe reference) while ranking and spacing the networks alike.

    python benchmarks/cross_run.py benchmarks/results/predictor_accuracy_run12 \
        benchmarks/results/predictor_accuracy_run13 --out benchmarks/results/cross_run_12_13
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from hwadapt.arch.spec import Arch
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.validate import summarise


def within_5pct(predicted: np.ndarray, measured: np.ndarray, level_free: bool) -> float:
    if level_free:
        predicted = predicted * np.median(measured / predicted)
    return summarise(predicted, measured).within_5pct


def cross(cell: str, first: Path, second: Path) -> list[dict]:
    runs = {}
    for name, folder in (("A", first), ("B", second)):
        measured = pd.read_csv(folder / f"{cell}.validate.csv")
        runs[name] = (LatencyPredictor.load(folder / f"{cell}.parquet"), measured)
    if not runs["A"][1]["arch"].equals(runs["B"][1]["arch"]):
        raise SystemExit(f"{cell}: the two runs validated different architectures")
    archs = [Arch.from_json(a) for a in runs["A"][1]["arch"]]
    measured = {name: m["measured_ms"].to_numpy() for name, (_, m) in runs.items()}
    predicted = {name: np.array([p.predict_ms(a) for a in archs]) for name, (p, _) in runs.items()}
    pairs = [(f"table {t} / measured {m}", predicted[t], measured[m]) for t in "AB" for m in "AB"]
    pairs.append(("measured A / measured B", measured["A"], measured["B"]))
    return [{"cell": cell, "pair": label, "within_5pct": within_5pct(x, y, False),
             "within_5pct_level_free": within_5pct(x, y, True), "median_ratio": float(np.median(y / x))}
            for label, x, y in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="run A's output folder (tables and .validate.csv)")
    parser.add_argument("second", type=Path, help="run B's output folder")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cross_run"))
    args = parser.parse_args()
    cells = sorted(p.stem for p in args.first.glob("*.parquet")
                   if (args.second / p.name).is_file() and (args.first / f"{p.stem}.validate.csv").is_file()
                   and (args.second / f"{p.stem}.validate.csv").is_file())
    if not cells:
        parser.error("no cell has a table and a .validate.csv in both folders")
    frame = pd.DataFrame([row for cell in cells for row in cross(cell, args.first, args.second)])
    args.out.mkdir(parents=True, exist_ok=True)
    frame.round(4).to_csv(args.out / "cross.csv", index=False)
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
        print(frame.pivot(index="cell", columns="pair", values="within_5pct_level_free").to_string())
        print(frame.pivot(index="cell", columns="pair", values="within_5pct").to_string())


if __name__ == "__main__":
    main()
