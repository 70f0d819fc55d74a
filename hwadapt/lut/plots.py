"""Figures of a LUT: latency heatmaps per shape class, predicted-vs-measured scatter."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from hwadapt.lut.lookup import OpLookup, ShapeTable  # noqa: E402
from hwadapt.ops import Op  # noqa: E402


def heatmap_png(lookup: OpLookup, path: Path, title: str) -> Path:
    """Latency over (in, out) channels for each 2-D shape class; 1-D classes as curves."""
    grids = [t for t in lookup.tables.values() if not t.diagonal and len(t.cin) > 1 and len(t.cout) > 1]
    lines = [t for t in lookup.tables.values() if t not in grids]
    cols = 3
    rows = (len(grids) + 1 + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax, table in zip(axes.flat, grids):
        values = np.array([[table.ms(_op(table, ci, co))[0] for co in table.cout] for ci in table.cin])
        mesh = ax.pcolormesh(np.arange(len(table.cout) + 1), np.arange(len(table.cin) + 1), values, shading="flat")
        ax.set_xticks(np.arange(len(table.cout)) + 0.5, [str(c) for c in table.cout], rotation=90, fontsize=6)
        ax.set_yticks(np.arange(len(table.cin)) + 0.5, [str(c) for c in table.cin], fontsize=6)
        kind, size, kernel, stride, act = table.key
        ax.set(title=f"{kind} k{kernel} s{stride} @{size}px", xlabel="out channels", ylabel="in channels")
        fig.colorbar(mesh, ax=ax, label="ms")
    ax = axes.flat[len(grids)]
    for table in lines:
        axis = table.cin
        values = [table.ms(_op(table, c, c if table.diagonal else int(table.cout[0])))[0] for c in axis]
        kind, size, kernel, stride, _ = table.key
        ax.plot(axis, values, marker=".", label=f"{kind} k{kernel} s{stride} @{size}")
    ax.set(title="1-D classes", xlabel="channels", ylabel="ms")
    ax.legend(fontsize=5)
    for extra in list(axes.flat)[len(grids) + 1:]:
        extra.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _op(table: ShapeTable, cin: int, cout: int) -> Op:
    kind, size, kernel, stride, act = table.key
    return Op(kind, int(cin), int(cout), int(size), int(kernel), int(stride), act)


def scatter_png(table: pd.DataFrame, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(table["measured_ms"], table["predicted_ms"], s=14)
    lo = float(min(table["measured_ms"].min(), table["predicted_ms"].min())) * 0.95
    hi = float(max(table["measured_ms"].max(), table["predicted_ms"].max())) * 1.05
    xs = np.linspace(lo, hi, 10)
    ax.plot(xs, xs, "k-", lw=1, label="y = x")
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="grey", alpha=0.15, label="±10%")
    ax.fill_between(xs, xs * 0.95, xs * 1.05, color="grey", alpha=0.25, label="±5%")
    ax.set(xlabel="measured (ms)", ylabel="predicted (ms)", title=title, xlim=(lo, hi), ylim=(lo, hi))
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
