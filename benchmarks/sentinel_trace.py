"""Which windows would a cache sentinel set aside, and what would that leave?

One agent times, in ``--windows`` consecutive windows, the protocol's probe (MobileNetV1
x0.5 at the table's resolution), two cache-heavy sentinel candidates (MobileNetV1 x1.25
and x1.5 at 32 px: 20 and 29 MB of weights) and the full-width MobileNetV1 and V2 at the
resolution, all interleaved in each window, raw. Each network's and sentinel's level over
the probe's, divided by its median over the trace, is what a window reads on the probe's
time base. Per sentinel and threshold, the windows a gate would keep (the probe within
``GATE_PCT`` of its median and the sentinel at most the threshold over its own) and how
much the two networks' levels then scatter (standard deviation, %) and reach (max over
the median).

Writes ``trace_<backend>_<px>.csv`` (``--from-csv`` re-reads one) and ``gate_<backend>_<px>.csv``.

    python benchmarks/sentinel_trace.py --backend ort-cpu --resolution 32 --windows 150 \\
        --out benchmarks/results/sentinel_trace
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from device_agents import make_agent
from hwadapt.arch.families import build
from hwadapt.measure import GATE_PCT, PROBE_FAMILY, PROBE_WIDTH, measure_archs

MODELS = {"probe": (PROBE_FAMILY, PROBE_WIDTH, None), "s125": ("mobilenet_v1", 1.25, 32),
          "s15": ("mobilenet_v1", 1.5, 32), "v1": ("mobilenet_v1", 1.0, None), "v2": ("mobilenet_v2", 1.0, None)}
SENTINELS, NETWORKS, THRESHOLDS = ("s125", "s15"), ("v1", "v2"), (5.0, 10.0, 20.0)


def trace(backend: str, resolution: int, windows: int) -> pd.DataFrame:
    archs = [build(family, width=width, resolution=px or resolution, num_classes=10)
             for family, width, px in MODELS.values()]
    rows, start = [], time.time()
    with make_agent(backend, threads=1) as agent:
        for _ in range(windows):
            measured = measure_archs(agent, archs)
            rows.append({"t": time.time() - start, **{name: m.raw_ms for name, m in zip(MODELS, measured)}})
    return pd.DataFrame(rows)


def over_probe(levels: pd.DataFrame) -> pd.DataFrame:
    """Each sentinel's and network's level over the probe's, relative to its median."""
    relative = pd.DataFrame({name: levels[name] / levels["probe"] for name in (*SENTINELS, *NETWORKS)})
    return relative / relative.median()


def gate_row(relative: pd.DataFrame, kept: pd.Series, sentinel: str, threshold: float | None) -> dict:
    row = {"sentinel": sentinel, "threshold_pct": threshold, "kept": int(kept.sum()), "windows": len(kept)}
    for network in NETWORKS:
        row[f"{network}_std_pct"] = float(relative[network][kept].std() * 100)
        row[f"{network}_max"] = float(relative[network][kept].max())
    return row


def gate_table(levels: pd.DataFrame, relative: pd.DataFrame) -> pd.DataFrame:
    probe_ok = (levels["probe"] / levels["probe"].median() - 1).abs() * 100 <= GATE_PCT
    rows = [gate_row(relative, probe_ok, "none", None)]
    rows += [gate_row(relative, probe_ok & ((relative[sentinel] - 1) * 100 <= threshold), sentinel, threshold)
             for sentinel in SENTINELS for threshold in THRESHOLDS]
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="ort-cpu")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--windows", type=int, default=150)
    parser.add_argument("--from-csv", type=Path, help="a trace written by an earlier run")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sentinel_trace"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"{args.backend}_{args.resolution}"
    levels = pd.read_csv(args.from_csv) if args.from_csv else trace(args.backend, args.resolution, args.windows)
    if not args.from_csv:
        levels.to_csv(args.out / f"trace_{name}.csv", index=False)
    relative = over_probe(levels)
    table = gate_table(levels, relative)
    table.round(3).to_csv(args.out / f"gate_{name}.csv", index=False)
    correlation = relative.corr()
    print(table.round(3).to_string(index=False))
    print(f"correlation of the levels over the probe's:\n{correlation.round(2).to_string()}")


if __name__ == "__main__":
    main()
