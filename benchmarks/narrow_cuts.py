"""How a LUT prices one layer cut far below the widths it was calibrated on.

NetAdapt cuts one channel group at a time and, late on its path, cuts some groups to a
few channels (MobileNetV1 x0.5 at 32 px ended with groups 11 and 13 at 24 of their 512
and 1024 channels). A table's calibration networks keep every group at 25-100% of its
full width, a third of them shrunk down to 8 channels anywhere. This prices and measures
(as every end-to-end figure: the median of its windows, against the table's probe) the
base network at ``--width`` and copies with a single group cut to each of ``--cuts``
channels, and prints measured over predicted per cut: a ratio that falls for some
groups only says where the calibrated sum stops following the network.

    python benchmarks/narrow_cuts.py LUT.parquet --width 0.5 --out benchmarks/results/narrow_cuts
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from hwadapt.arch.families import build
from hwadapt.arch.groups import set_widths, width_groups
from hwadapt.arch.spec import Arch
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.measure import measure_in_windows, median_window


def cut_networks(predictor: LatencyPredictor, width: float, cuts: list[int]) -> list[tuple[str, int, Arch]]:
    """The base network and one copy per (group, cut) narrower than the group is."""
    meta = predictor.meta
    base = build(meta.family, width=width, resolution=meta.resolution, num_classes=meta.num_classes)
    networks = [("base", 0, base)]
    for group in width_groups(base):
        networks += [(group.name, cut, set_widths(base, {group.name: cut})) for cut in cuts if cut < group.width(base)]
    return networks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lut", type=Path)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--cuts", default="8,24")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/narrow_cuts"))
    args = parser.parse_args()
    predictor = LatencyPredictor.load(args.lut)
    networks = cut_networks(predictor, args.width, [int(c) for c in args.cuts.split(",")])
    with predictor.make_agent() as agent:
        windows = measure_in_windows(agent, [arch for _, _, arch in networks], probe=predictor.probe())
    rows = []
    for (group, cut, arch), found in zip(networks, windows):
        predicted, measured = predictor.predict_ms(arch), median_window(found).median_ms
        rows.append({"group": group, "cut": cut, "predicted_ms": round(predicted, 5), "measured_ms": round(measured, 5),
                     "measured / predicted": round(measured / predicted, 3)})
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "cuts.csv", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
