"""Channel steps: what one op costs for every channel count from 8 to 192.

CPU kernels work on channels in tiles, so an op's cost can be a staircase in its
channel count rather than the line that the LUT's interpolation between grid points
assumes. This sweeps a 1x1 conv's input and output channels (the other axis at 64) and a
depthwise conv's channels, on several map sizes, each point measured twice (ascending,
then descending order) in interleaved batches; raw levels in microseconds.

Prints, per backend, axis and map size, the tile over which the 64..128 part of the
sweep is flat (1: it grows linearly); writes ``sweeps.csv`` and ``sweeps.png`` under --out.

    python benchmarks/channel_steps.py --out benchmarks/results/channel_steps
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from device_agents import make_agent
from hwadapt.arch.ops import Op
from hwadapt.materialize import save_ops
from hwadapt.materialize.weights import random_weights
from hwadapt.measure.protocol import default_plan, measure_sessions

CHANNELS = list(range(8, 193, 8))
TILE_CHANNELS = list(range(64, 129, 8))  # where the tile is judged
FIXED = 64  # channel count of the axis that is not swept
AXES = {
    "conv cin": lambda c, size: Op("conv", c, FIXED, size, inputs=(-1,)),
    "conv cout": lambda c, size: Op("conv", FIXED, c, size, inputs=(-1,)),
    "dwconv cin": lambda c, size: Op("dwconv", c, c, size, kernel=3, inputs=(-1,)),
}
CANDIDATE_TILES = (32, 16)  # tried largest first
FLAT_BELOW = 0.25  # median cost still unpaid below a tile edge, relative to a linear cost


def round_up(channels: int, size: int) -> int:
    return -(-channels // size) * size


def tile(channels: list[int], cost: list[float]) -> int:
    """The largest candidate tile over which ``cost`` is flat, or 1 when it grows linearly.

    For each channel count c: the cost at c rounded up to the tile, minus the cost at c,
    over what a linear cost would add across that distance; about 1 for a linear cost,
    0 when c already pays for its whole tile (a 16-channel staircase scores ~0.67 for a
    32-channel tile).
    """
    at = dict(zip(channels, cost))
    slope = (cost[-1] - cost[0]) / (channels[-1] - channels[0])
    if slope <= 0:
        return 1
    for size in CANDIDATE_TILES:
        unpaid = [(at[round_up(c, size)] - at[c]) / (slope * (round_up(c, size) - c))
                  for c in channels if c % size and round_up(c, size) in at]
        if unpaid and float(np.median(unpaid)) < FLAT_BELOW:
            return size
    return 1


def sweep(backend: str, axis: str, size: int, batch: int = 8) -> pd.DataFrame:
    rows = []
    with make_agent(backend, threads=1) as agent, tempfile.TemporaryDirectory() as tmp:
        plan, fmt = default_plan(agent), agent.model_format
        for order in (CHANNELS, CHANNELS[::-1]):
            for start in range(0, len(order), batch):
                part = order[start:start + batch]
                ops = [AXES[axis](c, size) for c in part]
                sessions = [agent.open(save_ops([op], random_weights([op], seed=c), fmt, Path(tmp) / f"m{c}.{fmt}"))
                            for op, c in zip(ops, part)]
                try:
                    measured = measure_sessions(agent, sessions, plan)
                finally:
                    for session in sessions:
                        session.close()
                rows += [{"backend": backend, "axis": axis, "size": size, "channels": c, "us": m.raw_ms * 1000}
                         for c, m in zip(part, measured)]
    return pd.DataFrame(rows)


def detected(frame: pd.DataFrame) -> int:
    cost = frame.groupby("channels")["us"].median()
    return tile(TILE_CHANNELS, [float(cost[c]) for c in TILE_CHANNELS])


def sweeps_png(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(frame.groupby(["backend", "axis"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
    for ax, ((backend, axis), group) in zip(axes[0], panels):
        for size, curve in group.groupby("size"):
            cost = curve.groupby("channels")["us"].median()
            ax.plot(cost.index, cost / cost.iloc[-1], marker=".", label=f"{size}x{size}")
        ax.set_xticks(np.arange(16, 193, 32), minor=False)
        ax.grid(axis="x", alpha=0.3)
        ax.set(title=f"{backend} {axis}", xlabel="channels", ylabel="cost / cost at 192")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/channel_steps"))
    parser.add_argument("--backends", nargs="+", default=["ort-cpu", "litert-cpu"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 2, 8, 16])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    frames, table = [], []
    for backend in args.backends:
        for axis in AXES:
            for size in args.sizes:
                frames.append(sweep(backend, axis, size))
                table.append({"backend": backend, "axis": axis, "size": size, "tile": detected(frames[-1])})
                print(table[-1], flush=True)
    frame = pd.concat(frames)
    frame.to_csv(args.out / "sweeps.csv", index=False)
    sweeps_png(frame, args.out / "sweeps.png")
    print(pd.DataFrame(table).pivot(index=["backend", "axis"], columns="size", values="tile").to_string())


if __name__ == "__main__":
    main()
