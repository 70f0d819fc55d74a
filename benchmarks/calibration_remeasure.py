"""A table's own calibration networks measured again, beside the validation networks:
do they still read what the table holds, and how many members should a table have?

Per table (a LUT built by ``hwadapt profile``; ``--build`` builds it first, as
``predictor_accuracy.py`` does, so the re-measurement follows the build): its calibration
networks (the base network, the members, the shrunk networks) and the validation networks
of ``hwadapt lut validate --seed 1`` are measured together, in shuffled mixed windows (the
protocol of every end-to-end figure, with the table's probe). Then:

* **drift**: each group's figure now over its figure in the table (median);
* **refits** on the networks as measured now, scored on held-out validation networks (the
  validation networks split in two halves, ``--splits`` times): the table's set (shrunk
  networks at ``SHRUNK_WEIGHT``), its members alone, and each with the other half of the
  validation networks added as members; and the table's own fit on the same halves.

Prints a table, writes ``networks.csv``, ``drift.csv``, ``fits.csv`` and ``fits.png``;
``--from-csv`` re-scores an earlier ``networks.csv`` (with the tables beside it).

    python benchmarks/calibration_remeasure.py --build litert-cpu:mobilenet_v2:32 --build ort-cpu:mobilenet_v2:32 \\
        --calibration-models 40 --out benchmarks/results/calibration_remeasure
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from device_agents import make_agent
from hwadapt.arch.families import build
from hwadapt.arch.spec import Arch
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.profile import SHRUNK_WEIGHT, build_lut, shrunk_mask
from hwadapt.lut.store import LutMeta, load_lut
from hwadapt.lut.validate import sample_archs
from calibration_draws import fitted, measure_pool  # a sibling script: benchmarks/ is on the path

SAMPLES = 40


def build_table(spec: str, out: Path, calibration_models: int | None) -> Path:
    backend, family, resolution = spec.split(":")
    path = out / f"{backend}_{family}_{resolution}.parquet"
    options = {"calibration_models": calibration_models} if calibration_models else {}
    with make_agent(backend) as agent:
        build_lut(agent, family, int(resolution), path, show_progress=False, **options)
    return path


def table_networks(meta: LutMeta, frame: pd.DataFrame) -> pd.DataFrame:
    """The table's calibration networks with their group and stored figure, then the
    validation networks."""
    models = frame[frame["kind"] == "model"]
    base = build(meta.family, resolution=meta.resolution, num_classes=meta.num_classes).to_json(indent=None)
    shrunk = shrunk_mask(list(models["arch"]), meta)
    groups = np.where(models["arch"] == base, "base", np.where(shrunk, "shrunk", "member"))
    validation = [a.to_json(indent=None) for a in sample_archs(meta.family, meta.resolution, meta.num_classes,
                                                                SAMPLES, seed=1)]
    return pd.DataFrame({"group": [*groups, *["validation"] * len(validation)],
                         "arch": [*models["arch"], *validation],
                         "stored_ms": [*models["ms"], *[np.nan] * len(validation)]})


def refit(meta: LutMeta, frame: pd.DataFrame, lookup: OpLookup, parts: list[tuple[pd.DataFrame, float]],
          column: str) -> LatencyPredictor:
    """The table's op rows calibrated on ``parts`` (networks and the weight of each part)."""
    chosen = pd.concat([networks for networks, _ in parts])
    weights = np.concatenate([np.full(len(networks), weight) for networks, weight in parts])
    return fitted(meta, frame, lookup, [Arch.from_json(a) for a in chosen["arch"]], chosen[column].to_numpy(), weights)


def errors(predictor: LatencyPredictor, networks: pd.DataFrame) -> np.ndarray:
    predicted = np.array([predictor.predict_ms(Arch.from_json(a)) for a in networks["arch"]])
    return predicted / networks["measured_ms"].to_numpy() - 1


def score_table(table: Path, networks: pd.DataFrame, splits: int) -> tuple[dict, list[dict]]:
    meta, frame = load_lut(table)
    lookup = OpLookup(frame, meta.periods)
    group = {name: networks[networks["group"] == name] for name in ("base", "member", "shrunk", "validation")}
    drift = {"table": table.stem, **{f"{name}_now_over_stored": float((g["measured_ms"] / g["stored_ms"]).median())
                                     for name, g in group.items() if name != "validation"}}
    table_set = [(group["base"], 1.0), (group["member"], 1.0), (group["shrunk"], SHRUNK_WEIGHT)]
    own = LatencyPredictor(meta, lookup)
    fits = []
    rng = np.random.default_rng(0)
    for split in range(splits):
        order = rng.permutation(len(group["validation"]))
        added, held_out = (group["validation"].iloc[order[:len(order) // 2]],
                           group["validation"].iloc[order[len(order) // 2:]])
        variants = {"table's own fit": own,
                    "table set": refit(meta, frame, lookup, table_set, "measured_ms"),
                    "members only": refit(meta, frame, lookup, [(group["member"], 1.0)], "measured_ms"),
                    "table set + added members": refit(meta, frame, lookup, [*table_set, (added, 1.0)], "measured_ms"),
                    "members + added members": refit(meta, frame, lookup, [(group["member"], 1.0), (added, 1.0)],
                                                     "measured_ms")}
        for name, predictor in variants.items():
            err = errors(predictor, held_out)
            fits.append({"table": table.stem, "fit": name, "split": split, "members": len(group["member"]),
                         "added": len(added) if "added" in name else 0, "bias_pct": float(err.mean() * 100),
                         "within_5pct": float(np.mean(np.abs(err) <= 0.05)), "mape": float(np.mean(np.abs(err)) * 100)})
    return drift, fits


def fits_png(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pivot = summary.pivot(index="fit", columns="table", values="bias_pct")
    ax = pivot.plot.barh(figsize=(8, 4))
    ax.axvline(0, color="black", lw=1)
    ax.set(xlabel="bias on held-out validation networks, %", ylabel="", title="Refits on re-measured networks")
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=120)
    plt.close(ax.figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="*", type=Path)
    parser.add_argument("--build", action="append", default=[], metavar="BACKEND:FAMILY:RESOLUTION",
                        help="build this table into --out first (repeatable)")
    parser.add_argument("--calibration-models", type=int, default=None, help="with --build (default: build_lut's)")
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--from-csv", type=Path, help="re-score this networks.csv (its tables beside it)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/calibration_remeasure"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_csv:
        measured = pd.read_csv(args.from_csv)
        per_table = {args.from_csv.parent / f"{name}.parquet": g for name, g in measured.groupby("table", sort=False)}
    else:
        per_table = {}
        for table in [*args.tables, *(build_table(spec, args.out, args.calibration_models) for spec in args.build)]:
            meta, frame = load_lut(table)
            networks = table_networks(meta, frame)
            networks["measured_ms"] = measure_pool(LatencyPredictor.load(table),
                                                   [Arch.from_json(a) for a in networks["arch"]])
            per_table[table] = networks.assign(table=table.stem)
        measured = pd.concat(per_table.values(), ignore_index=True)
        measured.to_csv(args.out / "networks.csv", index=False)
    scored = [score_table(table, networks, args.splits) for table, networks in per_table.items()]
    drift = pd.DataFrame([d for d, _ in scored])
    fits = pd.DataFrame([f for _, table_fits in scored for f in table_fits])
    drift.to_csv(args.out / "drift.csv", index=False)
    fits.to_csv(args.out / "fits.csv", index=False)
    summary = fits.groupby(["table", "fit"], sort=False)[["members", "added", "bias_pct", "within_5pct", "mape"]].mean()
    summary["bias_sd"] = fits.groupby(["table", "fit"], sort=False)["bias_pct"].std()
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
        print(drift.to_string(index=False))
        print(summary.to_string())
    fits_png(summary.reset_index(), args.out / "fits.png")


if __name__ == "__main__":
    main()
