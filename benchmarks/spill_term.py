"""The spilled-weights term of the calibration, with and without, on stored tables.

Takes tables that `predictor_accuracy.py` wrote (each ``<cell>.parquet`` beside its
``<cell>.validate.csv``), refits each one's calibration on its own calibration models
twice, with the spilled-weights term (``hwadapt.lut.calibrate.spilled_mb``, the cache
size chosen by the fit) and without it, and scores the cell's own validation
measurements with both. No new measurement: both fits see the same numbers.

    python benchmarks/spill_term.py benchmarks/results/predictor_accuracy_run25 \\
        --out benchmarks/results/spill_term
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hwadapt.arch.spec import Arch
from hwadapt.lut.calibrate import CACHE_MB, fit_calibration
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.store import load_lut
from hwadapt.lut.validate import summarise
from grid_density import rescore  # a sibling script: benchmarks/ is on the path

VARIANTS = {"without": (), "with": CACHE_MB}  # the cache sizes each fit may choose from


def score(table: Path) -> list[dict]:
    meta, frame = load_lut(table)
    measured = pd.read_csv(table.with_suffix(".validate.csv"))
    archs = [Arch.from_json(a) for a in measured["arch"]]
    found = []
    for name, cache_sizes in VARIANTS.items():
        meta.calibration = fit_calibration(frame.to_dict("records"), meta.periods, cache_sizes)
        predictor = LatencyPredictor(meta, OpLookup(frame, meta.periods))
        report = summarise(np.array([predictor.predict_ms(a) for a in archs]), measured["measured_ms"].to_numpy())
        found.append({"table": f"{table.parent.name}/{table.stem}", "backend": meta.backend, "family": meta.family,
                      "resolution": meta.resolution, "spill_term": name, "cache_mb": meta.calibration["cache_mb"],
                      "fit_mape": meta.calibration["fit_mape"], **report.to_dict()})
    return found


def main() -> None:
    rows, _ = rescore(__doc__, "benchmarks/results/spill_term", score)
    columns = ["table", "spill_term", "cache_mb", "fit_mape", "within_5pct", "within_10pct", "mape", "bias_pct"]
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
        print(rows[columns].to_string(index=False))


if __name__ == "__main__":
    main()
