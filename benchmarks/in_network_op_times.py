"""What an op costs inside a network, against the same op timed alone (ONNX Runtime).

A LUT times each op as a one-op model; the predictor sums those times and calibrates the
sum on whole networks. This shows, op class by op class, where a network's time goes
differently. ONNX Runtime's profiler times every node of ``--samples`` random networks
of a family (the validation sample stream of ``hwadapt lut validate``) and, in the same
run, every one of their ops as the one-op model a LUT measures. A one-op model's time
splits into its kernel and the layout reorders at its edges (NCHW to the blocked layout
and back), which a network pays once, not per op. Groups are op kind x kernel x stride
x input side; a network's own edge reorders are the "edges" group. Inside a network ONNX
Runtime fuses a residual add into the conv before it, so adds show 0 there and their
conv carries them.

Profiler times are wall-clock and include the profiler's own overhead, so the ratios,
not the levels, are the result. Prints a table, writes ``ratios.csv``,
``per_network.csv`` and ``ratios.png``.

    python benchmarks/in_network_op_times.py --family mobilenet_v2 --resolution 224 \
        --out benchmarks/results/in_network_op_times
"""
from __future__ import annotations

import argparse
import json
import re
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from device_agents.desktop import ort_session_options
from hwadapt.arch.ops import Op, lower
from hwadapt.arch.spec import Arch
from hwadapt.lut.space import standalone_op
from hwadapt.lut.validate import sample_archs
from hwadapt.materialize import export, save_ops
from hwadapt.materialize.weights import random_weights

NODE_OP = re.compile(r"^(?:conv|relu6_|relu|add|pool|flatten|fc|t|c|p)(\d+)")  # names the ONNX emitter gives


def node_medians(path: Path, runs: int, workdir: Path) -> dict[str, float]:
    """Median kernel time (ms) of every node of the optimised graph, over ``runs`` after a warm-up."""
    import onnxruntime as ort

    options = ort_session_options(threads=1, spinning=True)
    options.enable_profiling = True
    options.profile_file_prefix = str(workdir / path.stem)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {i.name: np.random.default_rng(0).standard_normal(i.shape).astype(np.float32)
             for i in session.get_inputs()}
    for _ in range(runs + runs // 4):
        session.run(None, feeds)
    times = defaultdict(list)
    for event in json.loads(Path(session.end_profiling()).read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            times[event["name"].removesuffix("_kernel_time")].append(event["dur"])
    return {name: float(np.median(durations[-runs:])) / 1000 for name, durations in times.items()}


def group_of(op: Op) -> str:
    return f"{op.kind} k{op.kernel} s{op.stride} @{op.size}"


def op_index(node: str) -> int | None:
    match = NODE_OP.match(node)
    return int(match.group(1)) if match else None


def alone(op: Op, runs: int, workdir: Path, cache: dict) -> tuple[float, float]:
    """(whole one-op model, its kernel alone) in ms, as a LUT row's model runs."""
    key = (op.kind, op.size, op.kernel, op.stride, op.act, op.cin, op.cout)
    if key not in cache:
        single = standalone_op(*key)
        path = save_ops([single], random_weights([single]), "onnx", workdir / "op.onnx")
        nodes = node_medians(path, runs, workdir)
        cache[key] = (sum(nodes.values()), sum(ms for name, ms in nodes.items() if op_index(name) == 0))
    return cache[key]


def compare(arch: Arch, runs: int, workdir: Path, index: int, cache: dict) -> list[dict]:
    """One row per op group of ``arch``: its ops timed alone and inside the network."""
    ops = lower(arch)
    in_network = defaultdict(float)
    for name, ms in node_medians(export(arch, "onnx", workdir / "net.onnx"), runs, workdir).items():
        i = op_index(name)
        in_network[group_of(ops[i]) if i is not None else "edges"] += ms
    standalone, kernel = defaultdict(float), defaultdict(float)
    for op in ops:
        whole, own = alone(op, runs, workdir, cache)
        standalone[group_of(op)] += whole
        kernel[group_of(op)] += own
    return [{"net": index, "group": group, "alone_ms": standalone.get(group, 0.0),
             "alone_kernel_ms": kernel.get(group, 0.0), "in_network_ms": in_network[group]}
            for group in sorted(set(standalone) | set(in_network))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="mobilenet_v2")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=200, help="profiled inferences per model")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/in_network_op_times"))
    args = parser.parse_args()
    archs = sample_archs(args.family, args.resolution, 10, args.samples, args.seed)
    cache: dict = {}
    with tempfile.TemporaryDirectory(prefix="hwadapt-opprof-") as tmp:
        rows = [row for i, arch in enumerate(archs) for row in compare(arch, args.runs, Path(tmp), i, cache)]
    frame = pd.DataFrame(rows)
    table = frame.groupby("group")[["alone_ms", "alone_kernel_ms", "in_network_ms"]].sum() / len(archs)
    table["vs_alone"] = table.in_network_ms / table.alone_ms.where(table.alone_ms > 0)
    table["vs_kernel"] = table.in_network_ms / table.alone_kernel_ms.where(table.alone_kernel_ms > 0)
    table.loc["total"] = [*table[["alone_ms", "alone_kernel_ms", "in_network_ms"]].sum(),
                          table.in_network_ms.sum() / table.alone_ms.sum(),
                          table.in_network_ms.sum() / table.alone_kernel_ms.sum()]
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "ratios.csv")
    frame.to_csv(args.out / "per_network.csv", index=False)
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
        print(f"{args.family} {args.resolution}px, ms per network, mean over {len(archs)} networks")
        print(table.to_string())
    ratios_png(table.drop(index="total"), args.out / "ratios.png", f"{args.family} {args.resolution}px, ONNX Runtime")


def ratios_png(table: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = table.dropna(subset=["vs_alone"])
    y = np.arange(len(shown))
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(shown) + 1.5))
    ax.barh(y - 0.2, shown.vs_alone, 0.4, label="vs the one-op model")
    ax.barh(y + 0.2, shown.vs_kernel, 0.4, label="vs its kernel alone")
    ax.set_yticks(y, shown.index, fontsize=7)
    ax.axvline(1.0, color="black", lw=1)
    ax.set(xlabel="in-network time / time alone", title=title)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
