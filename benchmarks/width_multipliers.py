"""Width multipliers: does a coarser grid misprice the networks NetAdapt's baseline uses?

For each cell, a table on a grid of 7 spaced channel counts per axis (the default until
run 13) is built, and the 4-point default is cut from it (`grid_density.restricted`: the
same measurements, refitted); then the family's base network at x0.25 to x1.0 is measured
end to end (the median of its windows, in ``--repeats`` separate agent runs, the median
kept) and priced by both. Same stretch of the host, same data: the difference is the grid's.

    python benchmarks/width_multipliers.py --out benchmarks/results/width_multipliers
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from device_agents import make_agent
from grid_density import restricted
from hwadapt.arch.families import build
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.profile import build_lut
from hwadapt.lut.store import load_lut
from hwadapt.measure import measure_in_windows, median_window

WIDTHS = (0.25, 0.375, 0.5, 0.75, 1.0)


def run_cell(backend: str, family: str, resolution: int, repeats: int, out: Path) -> list[dict]:
    lut = out / f"{backend}_{family}_{resolution}.parquet"
    with make_agent(backend) as agent:
        build_lut(agent, family, resolution, lut, show_progress=False, grid={"points": 7})
    meta, frame = load_lut(lut)
    full = LatencyPredictor.load(lut)
    coarse_meta, coarse = restricted(meta, frame, {**meta.grid, "points": 4})
    predictors = {"7 points": full, "4 points": LatencyPredictor(coarse_meta, OpLookup(coarse, coarse_meta.periods))}
    archs = [build(family, width=w, resolution=resolution, num_classes=meta.num_classes) for w in WIDTHS]
    runs = []
    for _ in range(repeats):
        with full.make_agent() as agent:
            runs.append([median_window(w).median_ms for w in measure_in_windows(agent, archs, probe=full.probe())])
    measured = np.median(np.array(runs), axis=0)
    rows = []
    for width, arch, ms in zip(WIDTHS, archs, measured):
        row = {"backend": backend, "family": family, "resolution": resolution, "width": width, "measured_ms": ms}
        for name, predictor in predictors.items():
            row[f"error_pct {name}"] = (predictor.predict_ms(arch) - ms) / ms * 100
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/width_multipliers"))
    parser.add_argument("--backends", default="ort-cpu,litert-cpu")
    parser.add_argument("--families", default="mobilenet_v1,mobilenet_v2")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for backend in args.backends.split(","):
        for family in args.families.split(","):
            rows += run_cell(backend, family, args.resolution, args.repeats, args.out)
            frame = pd.DataFrame(rows)
            frame.round(4).to_csv(args.out / "widths.csv", index=False)
    with pd.option_context("display.width", 200):
        print(frame.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
