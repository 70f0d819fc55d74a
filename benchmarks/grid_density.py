"""Grid density: how much of a LUT's channel grid the predictor needs.

Takes tables that `predictor_accuracy.py` wrote (each ``<cell>.parquet`` beside its
``<cell>.validate.csv``), keeps only the grid points a coarser grid setting would have
measured (a subset of the table's own grid), refits the calibration on the same
calibration models, and scores the cell's own validation measurements again. No new
measurement: every variant sees the same numbers, so the differences are the grid's.
Also how far each variant moves the prediction of the family's base network at the
width multipliers NetAdapt's baseline uses (x0.25 to x1.0), against the table as built.

    python benchmarks/grid_density.py benchmarks/results/predictor_accuracy_run12 \
        --out benchmarks/results/grid_density
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from hwadapt.arch.families import build
from hwadapt.arch.spec import Arch
from hwadapt.lut.calibrate import fit_calibration
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.space import shape_classes
from hwadapt.lut.store import LutMeta, load_lut
from hwadapt.lut.validate import summarise

# grid settings that override a table's own (each must select a subset of its points)
VARIANTS = {  # the first is the reference for the width shifts
    "as built": {},
    "4 spaced points": {"points": 4},
    "output period 16": {"period": 16},
    "4 points, period 16": {"points": 4, "period": 16},
    "no input residues": {"input_period": 0},
}
WIDTHS = (0.25, 0.375, 0.5, 0.75, 1.0)


def restricted(meta: LutMeta, frame: pd.DataFrame, grid: dict[str, int]) -> tuple[LutMeta, pd.DataFrame]:
    """The table as if it had been measured on ``grid``: its rows at that grid's points, refitted."""
    wanted = {(cls.key, op.cin, op.cout) for cls in shape_classes(meta.family, meta.resolution, meta.num_classes, grid)
              for op in cls.ops()}
    ops = frame[frame["kind"] != "model"]
    keep = [((r.kind, r.size, r.kernel, r.stride, r.act), r.cin, r.cout) in wanted for r in ops.itertuples()]
    subset = pd.concat([ops[keep], frame[frame["kind"] == "model"]], ignore_index=True)
    meta = replace(meta, grid=grid)
    meta.calibration = fit_calibration(subset.to_dict("records"), meta.periods)
    return meta, subset


def score(table: Path) -> list[dict]:
    meta, frame = load_lut(table)
    measured = pd.read_csv(table.with_suffix(".validate.csv"))
    archs = [Arch.from_json(a) for a in measured["arch"]]
    grid_points = int((frame["kind"] != "model").sum())
    multipliers = [build(meta.family, width=w, resolution=meta.resolution, num_classes=meta.num_classes)
                   for w in WIDTHS]
    as_built = None
    found = []
    for name, override in VARIANTS.items():
        if "input_period" in override and not meta.grid.get("input_period"):
            continue  # the table has no input residues to drop
        sub_meta, subset = restricted(meta, frame, {**meta.grid, **override})
        predictor = LatencyPredictor(sub_meta, OpLookup(subset, sub_meta.periods))
        report = summarise(np.array([predictor.predict_ms(a) for a in archs]), measured["measured_ms"].to_numpy())
        at_widths = np.array([predictor.predict_ms(a) for a in multipliers])
        as_built = at_widths if as_built is None else as_built
        found.append({"table": f"{table.parent.name}/{table.stem}", "backend": meta.backend,
                      "family": meta.family, "resolution": meta.resolution, "variant": name,
                      "grid_fraction": round(int((subset["kind"] != "model").sum()) / grid_points, 3),
                      "within_5pct": report.within_5pct, "within_10pct": report.within_10pct,
                      "mape": report.mape,
                      "width_shift_pct": float(np.max(np.abs(at_widths / as_built - 1)) * 100)})
    return found


def rescore(doc: str, default_out: str, score: Callable[[Path], list[dict]]) -> tuple[pd.DataFrame, Path]:
    """The command line of the scripts that re-score stored tables: every table in the
    given folders with its validation measurements beside it, scored by ``score``, the
    rows written to ``per_table.csv`` under --out. Returns the rows and --out."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="folders of tables with their .validate.csv")
    parser.add_argument("--out", type=Path, default=Path(default_out))
    args = parser.parse_args()
    tables = sorted(p for folder in args.folders for p in folder.glob("*.parquet")
                    if p.with_suffix(".validate.csv").is_file())
    if not tables:
        parser.error("no table with a .validate.csv beside it in " + ", ".join(map(str, args.folders)))
    rows = pd.DataFrame([row for table in tables for row in score(table)])
    args.out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(args.out / "per_table.csv", index=False)
    return rows, args.out


def write_summary(summary: pd.DataFrame, out: Path) -> None:
    """Write a re-scoring script's ``summary.csv`` under ``out`` and print it."""
    summary.to_csv(out / "summary.csv", index=False)
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
        print(summary.to_string(index=False))


def main() -> None:
    rows, out = rescore(__doc__, "benchmarks/results/grid_density", score)
    summary = (rows.groupby(["backend", "variant"], sort=False)
               .agg(tables=("table", "size"), grid_fraction=("grid_fraction", "mean"),
                    mean_within_5pct=("within_5pct", "mean"), min_within_5pct=("within_5pct", "min"),
                    mean_within_10pct=("within_10pct", "mean"), mean_mape=("mape", "mean"),
                    max_width_shift_pct=("width_shift_pct", "max"))
               .reset_index().round(4))
    write_summary(summary, out)


if __name__ == "__main__":
    main()
