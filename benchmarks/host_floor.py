"""How repeatable can any estimator be on this host? The floor under the protocol.

The protocol keeps, per model, the mean of its fastest third of round medians, and
divides it by a probe's level in the same window (``hwadapt.measure``). Whatever it
does, it cannot read a model faster than its fastest single inference. This times
single inferences of the full-width MobileNetV1 and V2, MobileNetV1 x0.75 and the
default probe (MobileNetV1 x0.5), interleaved in groups, in ``--blocks`` blocks of
``--block-s`` seconds in one process, and reports per model how far between blocks
(max vs min, %) each of these moves: the fastest single inference, the 1st percentile,
the protocol's level (lower envelope of group medians), and that level over the probe's.

If even the fastest inference of a model moves more than 3% between blocks while the
probe's does not, the host, not the estimator, sets that model's repeatability.

Inferences are timed by the wall clock by default (``--clock``): the agents' thread CPU
clock leaves out the hypervisor's steal time, in coarse steps, and now and then reads a
0.1 ms inference as 0, so its fastest reading is no floor.

Prints a table and writes ``levels.csv`` (one row per block and model) and
``spread.csv`` under --out.

    python benchmarks/host_floor.py --out benchmarks/results/host_floor
"""
from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pandas as pd

from device_agents import make_agent
from hwadapt.arch.families import build
from hwadapt.arch.ops import lower
from hwadapt.lut.calibrate import weight_mb
from hwadapt.materialize import export
from hwadapt.measure import PROBE_FAMILY, PROBE_WIDTH, lower_envelope
from probe_choice import spread_pct  # a sibling script: benchmarks/ is on the path

MODELS = {"v1 x1.0": ("mobilenet_v1", 1.0), "v1 x0.75": ("mobilenet_v1", 0.75), "v2 x1.0": ("mobilenet_v2", 1.0),
          "probe": (PROBE_FAMILY, PROBE_WIDTH)}
GROUP_MS = 15.0  # wall time one group of single inferences aims at, as the protocol's rounds


def block_levels(times: list[np.ndarray]) -> dict[str, float]:
    """One model's groups of single-inference times in one block, summarised."""
    every = np.concatenate(times)
    return {"min_ms": float(every.min()), "p1_ms": float(np.percentile(every, 1)),
            "level_ms": lower_envelope([float(np.median(t)) for t in times]), "inferences": len(every)}


def measure(backend: str, resolution: int, blocks: int, block_s: float, seed: int, clock: str) -> pd.DataFrame:
    archs = {name: build(family, width=width, resolution=resolution, num_classes=10)
             for name, (family, width) in MODELS.items()}
    rng, rows = random.Random(seed), []
    with TemporaryDirectory(prefix="hwadapt-floor-") as tmp, make_agent(backend, threads=1, clock=clock) as agent:
        sessions = {name: agent.open(export(arch, agent.model_format, Path(tmp) / f"{i}.{agent.model_format}"))
                    for i, (name, arch) in enumerate(archs.items())}
        runs = {name: max(3, int(GROUP_MS / max(float(np.median(s.time_runs(10))), 1e-4)))
                for name, s in sessions.items()}
        for block in range(blocks):
            times: dict[str, list[np.ndarray]] = {name: [] for name in sessions}
            deadline = time.monotonic() + block_s
            while time.monotonic() < deadline:
                for name in rng.sample(list(sessions), len(sessions)):
                    times[name].append(sessions[name].time_runs(runs[name]))
            rows += [{"backend": backend, "px": resolution, "clock": clock, "block": block, "model": name,
                      "weights_mb": round(sum(weight_mb(op) for op in lower(archs[name])), 1), **block_levels(t)}
                     for name, t in times.items()]
        for session in sessions.values():
            session.close()
    return pd.DataFrame(rows)


def spreads(levels: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (backend, px), cell in levels.groupby(["backend", "px"], sort=False):
        probe = cell[cell["model"] == "probe"].set_index("block")
        for model, one in cell.groupby("model", sort=False):
            one = one.set_index("block")
            rows.append({"backend": backend, "px": px, "model": model, "weights_mb": one["weights_mb"].iloc[0],
                         "fastest %": spread_pct(one["min_ms"]),
                         "fastest / probe's %": spread_pct(one["min_ms"] / probe["min_ms"]),
                         "p1 %": spread_pct(one["p1_ms"]),
                         "level %": spread_pct(one["level_ms"]),
                         "level / probe %": spread_pct(one["level_ms"] / probe["level_ms"])})
    return pd.DataFrame(rows).round(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/host_floor"))
    parser.add_argument("--backends", default="ort-cpu,litert-cpu")
    parser.add_argument("--resolutions", default="32,224")
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--block-s", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clock", choices=["wall", "thread"], default="wall")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    levels = pd.concat([measure(backend, int(px), args.blocks, args.block_s, args.seed, args.clock)
                        for backend in args.backends.split(",") for px in args.resolutions.split(",")])
    levels.to_csv(args.out / "levels.csv", index=False)
    table = spreads(levels)
    table.to_csv(args.out / "spread.csv", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
