"""Does a model's speed depend on the session it was loaded in?

Every window of an end-to-end measurement loads the model afresh (``measure_archs``),
and so every agent run does. If sessions of the same file differ persistently (where
the weights land in memory decides which cache sets they share with a neighbour), each
load is a draw, and one agent run's figure depends on its draws as well as on the host.

This loads each of ``--models`` ``--sessions`` times in one process and times the
sessions interleaved (groups of single inferences of about 15 ms, in random order) in
``--blocks`` blocks of ``--block-s`` seconds, keeping each session's fastest inference
per block. Per backend, resolution and model it reports:

* how much slower than the block's fastest session each session ran, averaged over the
  blocks (the slowest and fastest session): a persistent offset is a session effect;
* the spread between blocks (max vs min, %) of one session's fastest inference (the
  same session in every block; the median over sessions), and of the fastest over ``k``
  sessions drawn at random per block, as a window that loaded the model ``k`` times
  would read it (``k`` = 1: one fresh load per window, as the protocol does).

    python benchmarks/session_placement.py --out benchmarks/results/session_placement
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
from hwadapt.materialize import export
from host_floor import GROUP_MS, MODELS  # a sibling script: benchmarks/ is on the path
from probe_choice import spread_pct

DRAWS = 200  # random subsets per block and k, for the fastest-of-k spread


def session_blocks(backend: str, resolution: int, model: str, sessions: int, blocks: int, block_s: float,
                   seed: int) -> np.ndarray:
    """Each session's fastest inference per block (blocks x sessions, ms)."""
    family, width = MODELS[model]
    arch = build(family, width=width, resolution=resolution, num_classes=10)
    rng = random.Random(seed)
    with TemporaryDirectory(prefix="hwadapt-sessions-") as tmp, make_agent(backend, threads=1) as agent:
        path = export(arch, agent.model_format, Path(tmp) / f"model.{agent.model_format}")
        loaded = [agent.open(path) for _ in range(sessions)]
        runs = max(3, int(GROUP_MS / max(float(np.median(loaded[0].time_runs(10))), 1e-4)))
        fastest = np.full((blocks, sessions), np.inf)
        for block in range(blocks):
            deadline = time.monotonic() + block_s
            while time.monotonic() < deadline:
                for i in rng.sample(range(sessions), sessions):
                    fastest[block, i] = min(fastest[block, i], float(loaded[i].time_runs(runs).min()))
        for session in loaded:
            session.close()
    return fastest


def fastest_of_k_spread(fastest: np.ndarray, k: int, seed: int) -> float:
    """Median over random draws of the between-block spread of the fastest of ``k``
    sessions drawn afresh in every block."""
    rng = np.random.default_rng(seed)
    blocks, sessions = fastest.shape
    spreads = []
    for _ in range(DRAWS):
        picks = np.array([rng.choice(sessions, size=k, replace=False) for _ in range(blocks)])
        levels = np.take_along_axis(fastest, picks, axis=1).min(axis=1)
        spreads.append(spread_pct(pd.Series(levels)))
    return float(np.median(spreads))


def summary_row(fastest: np.ndarray, ks: list[int], seed: int) -> dict[str, float]:
    offsets = (fastest / fastest.min(axis=1, keepdims=True) - 1).mean(axis=0) * 100
    row = {"fastest session +%": round(float(offsets.min()), 1), "slowest session +%": round(float(offsets.max()), 1),
           "same session: spread %": round(float(np.median([spread_pct(pd.Series(c)) for c in fastest.T])), 1)}
    for k in ks:
        row[f"fastest of {k}: spread %"] = round(fastest_of_k_spread(fastest, k, seed), 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/session_placement"))
    parser.add_argument("--backends", default="ort-cpu,litert-cpu")
    parser.add_argument("--resolutions", default="32,224")
    parser.add_argument("--models", default="v1 x1.0,v2 x1.0", help=f"comma-separated, of: {', '.join(MODELS)}")
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--block-s", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ks = [k for k in (1, 2, 3) if k < args.sessions] + [args.sessions]
    args.out.mkdir(parents=True, exist_ok=True)
    levels, rows = [], []
    for backend in args.backends.split(","):
        for px in map(int, args.resolutions.split(",")):
            for model in args.models.split(","):
                fastest = session_blocks(backend, px, model, args.sessions, args.blocks, args.block_s, args.seed)
                cell = {"backend": backend, "px": px, "model": model}
                levels += [{**cell, "block": b, "session": s, "min_ms": fastest[b, s]}
                           for b in range(args.blocks) for s in range(args.sessions)]
                rows.append({**cell, **summary_row(fastest, ks, args.seed)})
                print(pd.DataFrame([rows[-1]]).to_string(index=False), flush=True)
    pd.DataFrame(levels).to_csv(args.out / "levels.csv", index=False)
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "summary.csv", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
