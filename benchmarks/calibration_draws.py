"""Calibration members drawn one by one vs as a balanced set: how well each set's fit
prices the validation networks.

Per table (a LUT built by ``hwadapt profile``: its op rows are used, its own calibration
networks are not), ``--sets`` member sets of ``--members`` networks are drawn with each
scheme: ``independent`` (every network its own draw of the family's space, as tables
built before balanced sets drew their members) and ``balanced`` (``Space.sample_many``:
a Latin hypercube over the widths), together with the validation networks of
``hwadapt lut validate --seed 1``. All of them are measured together, in mixed windows
(the protocol of every end-to-end figure, with the table's probe), so the sets differ by
their draw only, not by when they were measured. The predictor is then fitted on each
set alone (members only, all alike) and scores the validation networks; the table's own
fit (its calibration networks, measured while it was built) is scored on the same
measurements as scheme ``table``. Prints a table, writes ``per_set.csv``,
``networks.csv`` and ``bias.png``; ``--from-csv`` re-scores an earlier ``networks.csv``.

    python benchmarks/calibration_draws.py benchmarks/results/predictor_accuracy_run30/ort-cpu_mobilenet_v2_32.parquet \\
        benchmarks/results/predictor_accuracy_run30/litert-cpu_mobilenet_v2_32.parquet --out benchmarks/results/calibration_draws
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from hwadapt.arch.families import family_space
from hwadapt.arch.spec import Arch
from hwadapt.lut.calibrate import fit_calibration
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.store import LutMeta, load_lut
from hwadapt.lut.validate import sample_archs, summarise
from hwadapt.measure import measure_in_windows, median_window

SCHEMES = ("independent", "balanced")
FIRST_SEED = 100  # set seeds: clear of the seeds tables (0) and validation (1) use


def draw_set(meta: LutMeta, scheme: str, members: int, seed: int) -> list[Arch]:
    space = family_space(meta.family)
    if scheme == "balanced":
        return space.sample_many(meta.resolution, meta.num_classes, members, np.random.default_rng([seed, 0]))
    return [space.sample(meta.resolution, meta.num_classes, np.random.default_rng([seed, 0, i])) for i in range(members)]


def measure_pool(predictor: LatencyPredictor, archs: list[Arch]) -> np.ndarray:
    """Every network's figure, all measured together in shuffled batches."""
    order = np.random.default_rng(0).permutation(len(archs))
    with predictor.make_agent() as agent:
        predictor.check_target(agent)
        found = measure_in_windows(agent, [archs[i] for i in order], probe=predictor.probe())
    measured = np.empty(len(archs))
    measured[order] = [median_window(windows).median_ms for windows in found]
    return measured


def fitted(meta: LutMeta, frame: pd.DataFrame, lookup: OpLookup, archs: list[Arch],
           measured: np.ndarray, weights: np.ndarray | None = None) -> LatencyPredictor:
    """The table's op rows (``lookup``: theirs) calibrated on ``archs`` alone (``weights``:
    each network's in the fit; None: all alike)."""
    ops = frame[frame["kind"] != "model"]
    models = pd.DataFrame({"kind": "model", "arch": [a.to_json(indent=None) for a in archs], "ms": measured})
    rows = pd.concat([ops, models], ignore_index=True)
    calibration = fit_calibration(rows.to_dict("records"), meta.periods, weights=weights)
    return LatencyPredictor(replace(meta, calibration=calibration), lookup)


def run_table(table: Path, sets: int, members: int, samples: int,
              measured: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw, measure (or take ``measured``: a ``networks.csv`` of an earlier run) and score
    every set; the table's own fit (its build-time calibration networks) is scored on the
    same validation measurements, as scheme ``table``."""
    meta, frame = load_lut(table)
    drawn = [(scheme, FIRST_SEED + k, draw_set(meta, scheme, members, FIRST_SEED + k))
             for scheme in SCHEMES for k in range(sets)]
    validation = sample_archs(meta.family, meta.resolution, meta.num_classes, samples, seed=1)
    pool = [a for _, _, archs in drawn for a in archs] + validation
    groups = [f"{scheme}:{seed}" for scheme, seed, archs in drawn for _ in archs] + ["validation"] * samples
    if measured is None:
        figures = measure_pool(LatencyPredictor.load(table), pool)
    else:
        figures = measured.set_index("arch").loc[[a.to_json(indent=None) for a in pool], "measured_ms"].to_numpy()
    truth, lookup = figures[-samples:], OpLookup(frame, meta.periods)
    predictors, start = [], 0
    for scheme, seed, archs in drawn:
        predictors.append((scheme, seed, len(archs),
                           fitted(meta, frame, lookup, archs, figures[start:start + len(archs)])))
        start += len(archs)
    predictors.append(("table", 0, meta.calibration.get("models", 0), LatencyPredictor(meta, lookup)))
    per_set = [{"table": table.stem, "scheme": scheme, "seed": seed, "members": count,
                **summarise(np.array([predictor.predict_ms(a) for a in validation]), truth).to_dict()}
               for scheme, seed, count, predictor in predictors]
    networks = pd.DataFrame({"table": table.stem, "group": groups, "measured_ms": figures,
                             "arch": [a.to_json(indent=None) for a in pool]})
    return pd.DataFrame(per_set), networks


def summary(per_set: pd.DataFrame) -> pd.DataFrame:
    grouped = per_set.groupby(["table", "scheme"])
    return pd.DataFrame({"sets": grouped.size(), "bias_sd_pct": grouped["bias_pct"].std(),
                         "mean_abs_bias_pct": grouped["bias_pct"].apply(lambda b: b.abs().mean()),
                         "within_5pct_mean": grouped["within_5pct"].mean(),
                         "within_5pct_min": grouped["within_5pct"].min(), "mape_mean": grouped["mape"].mean()})


def bias_png(per_set: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = list(dict.fromkeys(per_set["table"]))
    fig, ax = plt.subplots(figsize=(1.8 + 2.2 * len(tables), 3.6))
    for t, table in enumerate(tables):
        for s, scheme in enumerate((*SCHEMES, "table")):
            bias = per_set[(per_set["table"] == table) & (per_set["scheme"] == scheme)]["bias_pct"]
            ax.scatter(np.full(len(bias), 4 * t + s), bias, color=f"C{s}", label=scheme if t == 0 else None)
    ax.set_xticks([4 * t + 1 for t in range(len(tables))], tables, fontsize=7)
    ax.axhline(0, color="black", lw=0.8)
    ax.set(ylabel="validation bias of the set's fit, %", title="validation bias: member sets' fits and the table's")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="+", type=Path)
    parser.add_argument("--sets", type=int, default=5, help="member sets per scheme")
    parser.add_argument("--members", type=int, default=19, help="networks per set (a 40-network table has 19)")
    parser.add_argument("--samples", type=int, default=40, help="validation networks")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/calibration_draws"))
    parser.add_argument("--from-csv", type=Path, help="re-score the networks.csv of an earlier run (no measurement)")
    args = parser.parse_args()
    earlier = pd.read_csv(args.from_csv) if args.from_csv else None
    results = [run_table(t, args.sets, args.members, args.samples,
                         None if earlier is None else earlier[earlier["table"] == t.stem]) for t in args.tables]
    per_set = pd.concat([r[0] for r in results], ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    per_set.to_csv(args.out / "per_set.csv", index=False)
    pd.concat([r[1] for r in results], ignore_index=True).to_csv(args.out / "networks.csv", index=False)
    bias_png(per_set, args.out / "bias.png")
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
        print(summary(per_set).to_string())


if __name__ == "__main__":
    main()
