"""How many calibration networks a table needs, on stored tables.

Takes tables that `predictor_accuracy.py` wrote (each ``<cell>.parquet`` beside its
``<cell>.validate.csv``), and refits each one's calibration on ``--sets`` random subsets
of its own calibration networks per size in ``--sizes``: the base network, members and
shrunk networks in the shares a new table of that size draws
(``hwadapt.lut.profile.default_shrunk``), the shrunk ones at ``SHRUNK_WEIGHT``. Each fit
scores the cell's validation measurements; the table's own fit (all its networks) is
size ``all``. No new measurement, so the subsets differ from the full set by their
networks only, not by when they were measured.

    python benchmarks/calibration_subsets.py benchmarks/results/predictor_accuracy_run31 \\
        --out benchmarks/results/calibration_subsets
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from calibration_draws import fitted  # sibling scripts: benchmarks/ is on the path
from grid_density import rescore, write_summary
from hwadapt.arch.spec import Arch
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.profile import SHRUNK_WEIGHT, default_shrunk, shrunk_mask
from hwadapt.lut.store import load_lut
from hwadapt.lut.validate import summarise

SIZES = (40, 30)
SETS = 20


def subset(members: np.ndarray, shrunk: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one subset of ``size`` networks: the base (row 0), then members and
    shrunk ones in a new table's shares."""
    cut = default_shrunk(size)
    return np.concatenate([[0], rng.choice(members, size - 1 - cut, replace=False), rng.choice(shrunk, cut, replace=False)])


def score(table: Path, sizes: tuple[int, ...] = SIZES, sets: int = SETS) -> list[dict]:
    meta, frame = load_lut(table)
    measured = pd.read_csv(table.with_suffix(".validate.csv"))
    validation, truth = [Arch.from_json(a) for a in measured["arch"]], measured["measured_ms"].to_numpy()
    models = frame[frame["kind"] == "model"]
    archs, figures = [Arch.from_json(a) for a in models["arch"]], models["ms"].to_numpy()
    is_shrunk = shrunk_mask(models["arch"].tolist(), meta)
    members, shrunk = np.flatnonzero(~is_shrunk)[1:], np.flatnonzero(is_shrunk)  # row 0: the base network
    lookup, rng = OpLookup(frame, meta.periods), np.random.default_rng(0)
    picks = [("all", np.arange(len(archs)))]
    picks += [(str(size), subset(members, shrunk, size, rng)) for size in sizes if size < len(archs)
              for _ in range(sets)]
    found = []
    for size, rows in picks:
        predictor = fitted(meta, frame, lookup, [archs[i] for i in rows], figures[rows],
                           np.where(is_shrunk[rows], SHRUNK_WEIGHT, 1.0))
        report = summarise(np.array([predictor.predict_ms(a) for a in validation]), truth)
        found.append({"table": f"{table.parent.name}/{table.stem}", "backend": meta.backend, "family": meta.family,
                      "resolution": meta.resolution, "size": size, "networks": len(rows), **report.to_dict()})
    return found


def main() -> None:
    rows, out = rescore(__doc__, "benchmarks/results/calibration_subsets", score)
    summary = (rows.groupby(["table", "size"], sort=False)
               .agg(fits=("networks", "size"), mean_within_5pct=("within_5pct", "mean"),
                    min_within_5pct=("within_5pct", "min"), mean_mape=("mape", "mean"),
                    mean_bias_pct=("bias_pct", "mean"), sd_bias_pct=("bias_pct", "std"))
               .reset_index().round(4))
    write_summary(summary, out)


if __name__ == "__main__":
    main()
