"""What each part of the calibration of run 34 does, on stored tables: the concave term
and the narrow calibration networks, each with and without.

Takes tables (a folder: those ``predictor_accuracy.py`` wrote, each ``<cell>.parquet``
beside its ``<cell>.validate.csv``) and refits each one's calibration on its own networks four
ways: with the concave term ``sqrt_ms`` (``hwadapt.lut.calibrate``) or without it, and
with the table's narrow networks at ``NARROW_WEIGHT`` or left out (weight 0). Each fit
scores the cell's validation networks and, where ``--cuts`` names a file for the cell
(``narrow_cuts.py``'s CSV of the base at ``--cut-width`` and its single cuts, measured
against the same table), those too, and with ``--family`` a NetAdapt ``family.csv``
priced by the one table given. No new measurement: every fit sees the same numbers.

    python benchmarks/calibration_terms.py benchmarks/results/predictor_accuracy_run34 \\
        --cuts 'benchmarks/results/narrow_cuts/run34_{cell}_x0.25.csv' --out benchmarks/results/calibration_terms
    python benchmarks/calibration_terms.py benchmarks/results/netadapt_cifar10_v1x05_reduced_s21/lut_mobilenet_v1_32.parquet \\
        --family benchmarks/results/netadapt_cifar10_v1x05_reduced_s21/family.csv \\
        --cuts benchmarks/results/narrow_cuts/netadapt_s21_x0.25.csv --out benchmarks/results/calibration_terms_netadapt
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from hwadapt.arch.spec import Arch
from hwadapt.lut.calibrate import fit_calibration
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.profile import calibration_roles, calibration_weights
from hwadapt.lut.store import load_lut
from hwadapt.lut.validate import summarise
from narrow_cuts import cut_networks  # a sibling script: benchmarks/ is on the path

VARIANTS = {  # name: (features held at 0, whether the narrow networks count)
    "sqrt + narrow (tables' own)": ((), True),
    "narrow, no sqrt": (("sqrt_ms",), True),
    "sqrt, no narrow": ((), False),
    "neither (run 33's form)": (("sqrt_ms",), False),
}


def measured_archs(path: Path) -> tuple[list[Arch], np.ndarray]:
    """The networks of a CSV with ``arch`` and ``measured_ms`` columns (a validation or family CSV)."""
    frame = pd.read_csv(path)
    return [Arch.from_json(a) for a in frame["arch"]], frame["measured_ms"].to_numpy()


def test_sets(predictor: LatencyPredictor, table: Path, cuts_pattern: str | None, cut_width: float,
              family_csv: Path | None) -> dict[str, tuple[list[Arch], np.ndarray]]:
    """The cell's measured networks: its validation networks where measured, its cuts
    likewise, and a NetAdapt family measured against it."""
    sets = {}
    if table.with_suffix(".validate.csv").is_file():
        sets["validation"] = measured_archs(table.with_suffix(".validate.csv"))
    if family_csv:
        sets["family"] = measured_archs(family_csv)
    cuts_path = Path(cuts_pattern.format(cell=table.stem)) if cuts_pattern else None
    if cuts_path and cuts_path.is_file():
        measured = pd.read_csv(cuts_path)
        networks = cut_networks(predictor, cut_width, sorted({int(c) for c in measured["cut"] if c}))
        if [(g, c) for g, c, _ in networks] != list(zip(measured["group"], measured["cut"])):
            raise SystemExit(f"{cuts_path} does not hold the cuts of the x{cut_width} base of {table}")
        sets["cuts"] = ([arch for _, _, arch in networks], measured["measured_ms"].to_numpy())
    return sets


def score(table: Path, cuts_pattern: str | None, cut_width: float, family_csv: Path | None) -> list[dict]:
    meta, frame = load_lut(table)
    rows = frame.to_dict("records")
    lookup = OpLookup(frame, meta.periods)
    weights = calibration_weights(rows, meta)
    narrow = calibration_roles([r["arch"] for r in rows if r["kind"] == "model"], meta) == "narrow"
    sets = test_sets(LatencyPredictor(meta, lookup), table, cuts_pattern, cut_width, family_csv)
    found = []
    for name, (without, with_narrow) in VARIANTS.items():
        fit_weights = weights if with_narrow else np.where(narrow, 0.0, weights)
        calibration = fit_calibration(rows, meta.periods, weights=fit_weights, without=without)
        predictor = LatencyPredictor(replace(meta, calibration=calibration), lookup)
        for set_name, (archs, measured) in sets.items():
            report = summarise(np.array([predictor.predict_ms(a) for a in archs]), measured)
            found.append({"table": table.stem, "calibration": name, "test set": set_name,
                          "sqrt_ms": calibration["coef"]["sqrt_ms"], "fit_mape": calibration["fit_mape"],
                          **report.to_dict()})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", type=Path, nargs="+", help="tables, or folders of tables with their .validate.csv")
    parser.add_argument("--cuts", help="each cell's narrow_cuts CSV, with {cell} for the table's name")
    parser.add_argument("--cut-width", type=float, default=0.25)
    parser.add_argument("--family", type=Path, help="a NetAdapt family.csv measured against the (one) table given")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/calibration_terms"))
    args = parser.parse_args()
    tables = sorted(t for given in args.tables for t in (
        [given] if given.suffix == ".parquet" else
        [p for p in given.glob("*.parquet") if p.with_suffix(".validate.csv").is_file()]))
    if not tables:
        parser.error("no table given, nor one with a .validate.csv beside it in the folders")
    if args.family and len(tables) > 1:
        parser.error("--family goes with one table")
    rows = pd.DataFrame([row for table in tables for row in score(table, args.cuts, args.cut_width, args.family)])
    args.out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(args.out / "per_table.csv", index=False)
    summary = (rows.groupby(["test set", "calibration"], sort=False)
               .agg(tables=("table", "size"), mean_within_5pct=("within_5pct", "mean"),
                    min_within_5pct=("within_5pct", "min"), mean_mape=("mape", "mean"),
                    mean_bias_pct=("bias_pct", "mean"), mean_fit_mape=("fit_mape", "mean")).reset_index())
    summary.to_csv(args.out / "summary.csv", index=False)
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
        print(rows[["table", "calibration", "test set", "within_5pct", "mape", "bias_pct", "fit_mape"]].to_string(index=False))
        print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
