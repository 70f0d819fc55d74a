"""Would uniformly narrow networks in the calibration set price small networks right?

A table's calibration networks are members of the family's space (every group at
25-100% of its full width) and shrunk members (any group down to 8 channels); the small
ones among them keep some group wide (run 34's tables held narrow ones too:
``hwadapt.lut.profile.calibration_set``). ``narrow_cuts.py`` found networks narrow in every
group (the x0.25 base and its single cuts, NetAdapt's late members) priced 1-10% high.
This measures ``--narrow`` extra calibration networks, random-width members of the
family at each of ``--widths`` (e.g. the x0.25 base with every group at 25-100% of its
width there), refits the table's calibration with them added (at each of
``--narrow-weights``, relative to a member of the space), and compares the table's
own calibration with the refitted one on three test sets (``networks.csv``: every
network, measured and priced both ways; ``ratios.csv``: per set):

* ``cuts``: the base at ``--cut-width`` and its single-group cuts (``narrow_cuts.py``);
* ``validation``: ``--samples`` networks of ``hwadapt lut validate``'s sample stream;
* ``family``: a NetAdapt ``family.csv`` measured against this table (``--family-csv``,
  its stored measurements: the same time base, not re-measured).

The extra networks and the first two test sets are measured in the same windows (as
every end-to-end figure: the median of its windows, against the table's probe).

    python benchmarks/narrow_calibration.py LUT.parquet --family-csv FAMILY.csv \\
        --out benchmarks/results/narrow_calibration
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from hwadapt.arch.families import build, narrow_members
from hwadapt.arch.spec import Arch
from hwadapt.lut.calibrate import fit_calibration
from hwadapt.lut.lookup import OpLookup
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.profile import calibration_weights
from hwadapt.lut.store import load_lut
from hwadapt.lut.validate import sample_archs
from hwadapt.measure import measure_in_windows, median_window
from narrow_cuts import cut_networks  # a sibling script: benchmarks/ is on the path


def refitted(predictor: LatencyPredictor, frame: pd.DataFrame, extra: list[tuple[Arch, float]],
             weight: float) -> LatencyPredictor:
    """The table's predictor with its calibration refitted on its own networks and ``extra``
    (each counted ``weight`` times a member of the space)."""
    meta, rows = predictor.meta, frame.to_dict("records")
    added = [{"kind": "model", "arch": arch.to_json(indent=None), "ms": ms} for arch, ms in extra]
    weights = np.concatenate([calibration_weights(rows, meta), np.full(len(added), weight)])
    calibration = fit_calibration(rows + added, meta.periods, weights=weights)
    return LatencyPredictor(replace(meta, calibration=calibration), predictor.lookup)


def ratio_figures(ratios: np.ndarray) -> dict[str, float]:
    return {"n": len(ratios), "within_5pct": round(float(np.mean(np.abs(ratios - 1) <= 0.05)), 3),
            "mape": round(float(np.mean(np.abs(ratios - 1)) * 100), 2),
            "bias_pct": round(float((np.mean(ratios) - 1) * 100), 2),
            "min_ratio": round(float(ratios.min()), 3), "max_ratio": round(float(ratios.max()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lut", type=Path)
    parser.add_argument("--family-csv", type=Path, help="a NetAdapt family.csv measured against this table")
    parser.add_argument("--widths", default="0.25,0.375,0.5")
    parser.add_argument("--narrow", type=int, default=12)
    parser.add_argument("--narrow-weights", default="0.5,1", help="weights of the extra networks in the refit")
    parser.add_argument("--cut-width", type=float, default=0.25)
    parser.add_argument("--samples", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/narrow_calibration"))
    args = parser.parse_args()
    meta, frame = load_lut(args.lut)
    predictor = LatencyPredictor(meta, OpLookup(frame, meta.periods))
    narrow = narrow_members(lambda w: build(meta.family, width=w, resolution=meta.resolution, num_classes=meta.num_classes),
                            args.narrow, np.random.default_rng(args.seed), [float(w) for w in args.widths.split(",")])
    tests = {"cuts": [arch for _, _, arch in cut_networks(predictor, args.cut_width, [8, 24])],
             "validation": sample_archs(meta.family, meta.resolution, meta.num_classes, args.samples, args.seed)}
    measured_archs = narrow + [arch for archs in tests.values() for arch in archs]
    with predictor.make_agent() as agent:
        windows = measure_in_windows(agent, measured_archs, probe=predictor.probe())
    levels = np.array([median_window(found).median_ms for found in windows])
    extra, levels = list(zip(narrow, levels[:len(narrow)])), levels[len(narrow):]
    measured = {}
    for name, archs in tests.items():
        measured[name], levels = (archs, levels[:len(archs)]), levels[len(archs):]
    if args.family_csv:
        family = pd.read_csv(args.family_csv)
        measured["family"] = ([Arch.from_json(a) for a in family["arch"]], family["measured_ms"].to_numpy())
    candidates = {"table": predictor, **{f"narrow x{w}": refitted(predictor, frame, extra, float(w))
                                         for w in args.narrow_weights.split(",")}}
    networks = pd.DataFrame(
        [{"set": "extra", "arch": arch.to_json(indent=None), "measured_ms": ms} for arch, ms in extra]
        + [{"set": name, "index": i, "arch": arch.to_json(indent=None), "measured_ms": float(ms),
            **{f"{label}: predicted_ms": c.predict_ms(arch) for label, c in candidates.items()}}
           for name, (archs, levels_ms) in measured.items() for i, (arch, ms) in enumerate(zip(archs, levels_ms))])
    tested = networks[networks["set"] != "extra"]
    table = pd.DataFrame([{"test set": name, "calibration": label,
                           **ratio_figures((one["measured_ms"] / one[f"{label}: predicted_ms"]).to_numpy())}
                          for name, one in tested.groupby("set", sort=False) for label in candidates])
    args.out.mkdir(parents=True, exist_ok=True)
    networks.to_csv(args.out / "networks.csv", index=False)
    table.to_csv(args.out / "ratios.csv", index=False)
    pd.DataFrame([{"calibration": label, **c.meta.calibration["coef"], "fit_mape": c.meta.calibration["fit_mape"]}
                  for label, c in candidates.items()]).to_csv(args.out / "coefficients.csv", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
