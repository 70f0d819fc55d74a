"""How repeatable can any estimator be on this host? The floor under the protocol.

Whatever the protocol does (``hwadapt.measure``), it cannot read a model faster than
its fastest single inference. This times single inferences of ``--models`` (by default
the full-width MobileNetV1 and V2, MobileNetV1 x0.75 and the default probe, MobileNetV1
x0.5; also "v1 x1.25" and "v1 x1.5", whose weights outgrow the cache the others share
with the neighbours), interleaved in groups, in ``--blocks`` blocks of ``--block-s``
seconds in one process, and reports per model how far between blocks (max vs min, %)
each of these moves: the fastest single inference, the 1st percentile, the lower
envelope of group medians (the protocol's level until session 10), and these over the
probe's. It also prints, per block, how much slower than in its fastest block each
model's fastest inference was: which models slow down together.

If even the fastest inference of a model moves more than 3% between blocks while the
probe's does not, the host, not the estimator, sets that model's repeatability.

Inferences are timed by the wall clock by default (``--clock``): the agents' thread CPU
clock leaves out the hypervisor's steal time, in coarse steps, and now and then reads a
0.1 ms inference as 0, so its fastest reading is no floor.

Prints two tables and writes ``levels.csv`` (one row per block and model),
``spread.csv`` and ``slowdown.csv`` under --out.

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
          "v1 x1.25": ("mobilenet_v1", 1.25), "v1 x1.5": ("mobilenet_v1", 1.5), "probe": (PROBE_FAMILY, PROBE_WIDTH)}
DEFAULT_MODELS = "v1 x1.0,v1 x0.75,v2 x1.0,probe"
GROUP_MS = 15.0  # wall time one group of single inferences aims at, as the protocol's rounds


def block_levels(times: list[np.ndarray]) -> dict[str, float]:
    """One model's groups of single-inference times in one block, summarised."""
    every = np.concatenate(times)
    return {"min_ms": float(every.min()), "p1_ms": float(np.percentile(every, 1)),
            "level_ms": lower_envelope([float(np.median(t)) for t in times]), "inferences": len(every)}


def measure(backend: str, resolution: int, models: list[str], blocks: int, block_s: float, seed: int,
            clock: str) -> pd.DataFrame:
    archs = {name: build(MODELS[name][0], width=MODELS[name][1], resolution=resolution, num_classes=10)
             for name in models}
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


def block_slowdowns(levels: pd.DataFrame) -> pd.DataFrame:
    """Per block, each model's fastest inference over its fastest block's, in % above."""
    fastest = levels.pivot_table(index=["backend", "px", "block"], columns="model", values="min_ms", sort=False)
    return ((fastest / fastest.groupby(level=["backend", "px"]).transform("min") - 1) * 100).round(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/host_floor"))
    parser.add_argument("--backends", default="ort-cpu,litert-cpu")
    parser.add_argument("--resolutions", default="32,224")
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--block-s", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clock", choices=["wall", "thread"], default="wall")
    parser.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated, of: {', '.join(MODELS)}")
    args = parser.parse_args()
    models = list(dict.fromkeys([*args.models.split(","), "probe"]))
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    levels = pd.concat([measure(backend, int(px), models, args.blocks, args.block_s, args.seed, args.clock)
                        for backend in args.backends.split(",") for px in args.resolutions.split(",")])
    levels.to_csv(args.out / "levels.csv", index=False)
    table = spreads(levels)
    table.to_csv(args.out / "spread.csv", index=False)
    print(table.to_string(index=False))
    slowdowns = block_slowdowns(levels)
    slowdowns.to_csv(args.out / "slowdown.csv")
    print("\nfastest inference per block, % above the model's fastest block")
    print(slowdowns.to_string())


if __name__ == "__main__":
    main()
