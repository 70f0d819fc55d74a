"""Over minutes of windows: which probe tracks the networks, and how many windows a figure needs.

One agent times, in ``--windows`` consecutive windows, four candidate probes (MobileNetV1
x0.5, the protocol's; V1 x0.25; the full-width V1 and V2) and three validation networks
(the first three of ``hwadapt lut validate --seed 1``), all interleaved in each window,
raw (no correction). Two tables:

* per network and probe: the window-to-window scatter of network / probe (1.4826 x the
  median absolute deviation of its log, %; "raw" is the network alone) and the drift
  (max - min of its per-minute medians, %);
* per network: how often five figures in a row, each the median of k consecutive
  probe-corrected windows (as ``measure_in_windows`` takes them for one network), agree
  within 3% (max vs min over the median), over every stretch of the trace, for k = 3, 5, 7.

Writes ``levels_<backend>_<px>.csv`` (``--from-csv`` re-reads one instead of measuring),
``tracking_<backend>_<px>.csv`` and ``figures_<backend>_<px>.csv``.

    python benchmarks/probe_tracking.py --backend ort-cpu --resolution 32 --windows 280 \\
        --out benchmarks/results/probe_tracking
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from device_agents import make_agent
from hwadapt.arch.families import build
from hwadapt.lut.validate import sample_archs
from hwadapt.measure import measure_archs

PROBES = {"probeV1x05": ("mobilenet_v1", 0.5), "probeV1x025": ("mobilenet_v1", 0.25),
          "V1x10": ("mobilenet_v1", 1.0), "V2x10": ("mobilenet_v2", 1.0)}
NETWORKS = ("m0", "m1", "m2")
WINDOW_COUNTS = (3, 5, 7)


def trace(backend: str, resolution: int, family: str, windows: int) -> pd.DataFrame:
    archs = [build(f, width=w, resolution=resolution, num_classes=10) for f, w in PROBES.values()]
    archs += sample_archs(family, resolution, 10, len(NETWORKS), seed=1)
    names = [*PROBES, *NETWORKS]
    rows = []
    with make_agent(backend, threads=1) as agent:
        for _ in range(windows):
            measured = measure_archs(agent, archs)
            rows.append({"t": time.time(), **{n: m.raw_ms for n, m in zip(names, measured)}})
    return pd.DataFrame(rows)


def robust_pct(log_levels: pd.Series) -> float:
    return float(np.median(np.abs(log_levels - log_levels.median())) * 1.4826 * 100)


def tracking(levels: pd.DataFrame) -> pd.DataFrame:
    logs, minute = np.log(levels[[*PROBES, *NETWORKS]]), ((levels["t"] - levels["t"].min()) // 60).astype(int)
    rows = []
    for network in (*NETWORKS, "V1x10", "V2x10"):
        for probe in ("raw", *PROBES):
            if probe == network:
                continue
            ratio = logs[network] - (logs[probe] if probe != "raw" else 0.0)
            per_minute = ratio.groupby(minute).median()
            rows.append({"network": network, "probe": probe, "scatter_pct": robust_pct(ratio),
                         "drift_pct": float((per_minute.max() - per_minute.min()) * 100)})
    return pd.DataFrame(rows)


def figures(levels: pd.DataFrame, probe: str = "probeV1x05", runs: int = 5) -> pd.DataFrame:
    rows = []
    for network in (*NETWORKS, "V1x10", "V2x10"):
        corrected = (levels[network] / levels[probe]).to_numpy()
        for k in WINDOW_COUNTS:
            figure = [np.median(corrected[i:i + k]) for i in range(0, len(corrected) - k + 1, k)]
            spreads = [(max(s) - min(s)) / np.median(s) * 100
                       for s in (figure[j:j + runs] for j in range(len(figure) - runs + 1))]
            rows.append({"network": network, "windows_per_figure": k, "stretches": len(spreads),
                         "within_3pct": float(np.mean(np.array(spreads) <= 3)),
                         "median_spread_pct": float(np.median(spreads))})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="ort-cpu")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--family", default="mobilenet_v1", help="the validation networks' family")
    parser.add_argument("--windows", type=int, default=280)
    parser.add_argument("--from-csv", type=Path, help="a levels CSV this script wrote: analyse it, measure nothing")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/probe_tracking"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tag = args.from_csv.stem.removeprefix("levels_") if args.from_csv else f"{args.backend}_{args.resolution}"
    if args.from_csv:
        levels = pd.read_csv(args.from_csv)
    else:
        levels = trace(args.backend, args.resolution, args.family, args.windows)
        levels.to_csv(args.out / f"levels_{tag}.csv", index=False)
    tracked, figured = tracking(levels), figures(levels)
    tracked.to_csv(args.out / f"tracking_{tag}.csv", index=False)
    figured.to_csv(args.out / f"figures_{tag}.csv", index=False)
    with pd.option_context("display.float_format", "{:.2f}".format, "display.width", 200):
        print(f"{len(levels)} windows over {(levels['t'].max() - levels['t'].min()) / 60:.1f} min")
        print(tracked.pivot(index="network", columns="probe", values=["scatter_pct", "drift_pct"]).to_string())
        print(figured.to_string(index=False))


if __name__ == "__main__":
    main()
