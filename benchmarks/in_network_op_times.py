"""What an op costs inside a network, against its standalone LUT time (ONNX Runtime).

A LUT times each op as a one-op model; the predictor sums those times and calibrates the
sum on whole networks. This shows, op class by op class, where a network's time goes
differently: ONNX Runtime's profiler times every node of ``--samples`` random networks of
the LUT's family (the validation sample stream of ``hwadapt lut validate``), and each
node's median is set against the LUT's standalone time of the same op. Groups are op
kind x stride x input side; "edges" are the layout reorders at the graph's ends. Inside
a network ONNX Runtime fuses a residual add into the conv before it, so adds show 0
there and their conv carries them.

Profiler times are wall-clock and include the profiler's own overhead, so the ratios,
not the levels, are the result. Prints a table, writes ``ratios.csv`` and ``ratios.png``.

    python benchmarks/in_network_op_times.py --lut PATH.parquet --out benchmarks/results/in_network_op_times
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
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.lut.validate import sample_archs
from hwadapt.materialize import export

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


def compare(predictor: LatencyPredictor, arch: Arch, runs: int, workdir: Path, index: int) -> list[dict]:
    """One row per op group of ``arch``: summed standalone (LUT) and in-network times."""
    ops = lower(arch)
    path = export(arch, "onnx", workdir / f"net{index}.onnx")
    in_network = defaultdict(float)
    for name, ms in node_medians(path, runs, workdir).items():
        match = NODE_OP.match(name)
        in_network[group_of(ops[int(match.group(1))]) if match else "edges"] += ms
    standalone = defaultdict(float)
    for op in ops:
        standalone[group_of(op)] += predictor.lookup.ms(op)[0]
    return [{"net": index, "group": group, "lut_ms": standalone.get(group, 0.0), "in_network_ms": in_network[group]}
            for group in sorted(set(standalone) | set(in_network))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lut", type=Path, required=True, help="an ort-cpu LUT (parquet)")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=200, help="profiled inferences per network")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/in_network_op_times"))
    args = parser.parse_args()
    predictor = LatencyPredictor.load(args.lut)
    if predictor.meta.backend != "ort-cpu":
        parser.error(f"{args.lut} is a {predictor.meta.backend} table; the profiler here is ONNX Runtime's")
    meta = predictor.meta
    archs = sample_archs(meta.family, meta.resolution, meta.num_classes, args.samples, args.seed)
    with tempfile.TemporaryDirectory(prefix="hwadapt-opprof-") as tmp:
        rows = [row for i, arch in enumerate(archs) for row in compare(predictor, arch, args.runs, Path(tmp), i)]
    frame = pd.DataFrame(rows)
    table = frame.groupby("group")[["lut_ms", "in_network_ms"]].sum() / len(archs)
    per_net = frame.assign(ratio=frame.in_network_ms / frame.lut_ms).replace(np.inf, np.nan)
    table["ratio"] = table.in_network_ms / table.lut_ms
    table["ratio_min"] = per_net.groupby("group")["ratio"].min()
    table["ratio_max"] = per_net.groupby("group")["ratio"].max()
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "ratios.csv")
    frame.to_csv(args.out / "per_network.csv", index=False)
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
        print(f"{meta.family} {meta.resolution}px, mean per network over {len(archs)} networks")
        print(table.to_string())
    ratios_png(table, args.out / "ratios.png", f"{meta.family} {meta.resolution}px, ONNX Runtime")


def ratios_png(table: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = table[table.lut_ms > 0]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(shown) + 1.5))
    ax.barh(shown.index, shown.ratio)
    ax.axvline(1.0, color="black", lw=1)
    ax.set(xlabel="in-network time / standalone LUT time", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
