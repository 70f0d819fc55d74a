"""How much the calibration's shrunk networks should weigh, on stored tables.

A table's calibration networks are the base network, random members of the family (drawn
like the validation networks) and members with any width shrunk down to 8 channels
(where NetAdapt takes a network). Takes tables that `predictor_accuracy.py` wrote (each
``<cell>.parquet`` beside its ``<cell>.validate.csv``), refits each one's calibration
with the shrunk networks at several weights, and scores two sets per fit: the cell's
own validation measurements, and each shrunk calibration network left out of the fit
in turn (judged on what the fit did not see; with the cache size the full fit chose). No
new measurement. Shrunk networks are told apart by drawing the calibration set again
(``hwadapt.lut.profile.shrunk_mask``); the tables of run 28 shrank every third
network, the others every other one. Tables built since weigh the shrunk ones at
``SHRUNK_WEIGHT`` = 0.5.

    python benchmarks/calibration_mix.py benchmarks/results/predictor_accuracy_run2{5,6,7} \\
        --out benchmarks/results/calibration_mix
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hwadapt.arch.spec import Arch
from hwadapt.lut.calibrate import FEATURES, calibration_networks, features, fit_calibration, fit_features
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.profile import shrunk_mask
from hwadapt.lut.store import load_lut
from hwadapt.lut.validate import summarise
from grid_density import rescore  # a sibling script: benchmarks/ is on the path

SHRUNK_WEIGHTS = (1.0, 0.5, 0.25, 0.0)  # 1: every network alike (the fit up to run 28); 0: members only


def left_out_errors(inputs, weights: np.ndarray, shrunk: np.ndarray, cache_mb) -> np.ndarray:
    """Each shrunk network's relative error (%) when the fit does not see it (``inputs``:
    the table's ``calibration_networks``)."""
    networks, op_ms, y = inputs
    X = np.array([features(ops, ms, cache_mb) for ops, ms in zip(networks, op_ms)])
    errors = []
    for k in np.flatnonzero(shrunk):
        held_out = weights.copy()
        held_out[k] = 0.0
        coef = fit_features(X, y, cache_mb, held_out)["coef"]
        errors.append((X[k] @ np.array([coef[name] for name in FEATURES]) / y[k] - 1) * 100)
    return np.array(errors)


def score(table: Path) -> list[dict]:
    meta, frame = load_lut(table)
    measured = pd.read_csv(table.with_suffix(".validate.csv"))
    archs = [Arch.from_json(a) for a in measured["arch"]]
    shrunk = shrunk_mask(frame.loc[frame["kind"] == "model", "arch"].tolist(), meta)
    rows, found = frame.to_dict("records"), []
    inputs = calibration_networks(rows, meta.periods)
    for weight in SHRUNK_WEIGHTS:
        weights = np.where(shrunk, weight, 1.0)
        meta.calibration = fit_calibration(rows, meta.periods, weights=weights)
        cache_mb = meta.calibration["cache_mb"]
        predictor = LatencyPredictor(meta, OpLookup(frame, meta.periods))
        report = summarise(np.array([predictor.predict_ms(a) for a in archs]), measured["measured_ms"].to_numpy())
        errors = left_out_errors(inputs, weights, shrunk, cache_mb)
        found.append({"table": f"{table.parent.name}/{table.stem}", "backend": meta.backend, "family": meta.family,
                      "resolution": meta.resolution, "shrunk_weight": weight, "shrunk": int(shrunk.sum()),
                      "cache_mb": cache_mb, **report.to_dict(),
                      "shrunk_left_out_mape": float(np.mean(np.abs(errors))),
                      "shrunk_left_out_within_5pct": float(np.mean(np.abs(errors) <= 5))})
    return found


def main() -> None:
    rows, _ = rescore(__doc__, "benchmarks/results/calibration_mix", score)
    columns = ["table", "shrunk_weight", "shrunk", "cache_mb", "within_5pct", "within_10pct", "mape", "bias_pct",
               "shrunk_left_out_mape", "shrunk_left_out_within_5pct"]
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 220):
        print(rows[columns].to_string(index=False))
        print(rows.groupby(["resolution", "shrunk_weight"])[["within_5pct", "mape", "shrunk_left_out_mape"]]
              .mean().to_string())


if __name__ == "__main__":
    main()
