"""Thread CPU clock vs wall clock for single-threaded inference.

Before they kept each model's fastest inference (``host_floor.py``), the desktop agents
timed 1-thread inference on the calling thread's CPU clock (still ``clock="thread"``).
This checks that clock's premise: back-to-back, on the same session, the two clocks'
medians agree on an idle host, and under load the wall clock inflates while the thread
clock does not.
Prints a table and writes CSV.

    python benchmarks/clock_agreement.py --out benchmarks/results/clock_agreement
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from device_agents import make_agent
from hwadapt.arch.families import build
from hwadapt.materialize import export


def medians(session_step, runs: int) -> tuple[float, float]:
    wall, cpu = np.empty(runs), np.empty(runs)
    for i in range(runs):
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        session_step()
        cpu[i], wall[i] = time.thread_time_ns() - c0, time.perf_counter_ns() - w0
    return float(np.median(wall)) / 1e6, float(np.median(cpu)) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/clock_agreement"))
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("ort-cpu", "litert-cpu"):
            agent = make_agent(backend, clock="wall")
            for family in ("mobilenet_v1", "mobilenet_v2"):
                for resolution in (32, 224):
                    arch = build(family, resolution=resolution, num_classes=10)
                    path = export(arch, agent.model_format, Path(tmp) / f"m.{agent.model_format}")
                    session = agent.open(path)
                    step = (lambda s=session: s.session.run_with_iobinding(s.binding)) if backend == "ort-cpu" \
                        else session.interpreter.invoke
                    runs = 200 if resolution == 32 else 20
                    for block in range(args.blocks):
                        wall, cpu = medians(step, runs)
                        rows.append({"backend": backend, "family": family, "resolution": resolution,
                                     "block": block, "wall_ms": wall, "thread_ms": cpu,
                                     "wall_over_thread": wall / cpu})
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out / "blocks.csv", index=False)
    summary = frame.groupby(["backend", "family", "resolution"]).agg(
        wall_ms=("wall_ms", "median"), thread_ms=("thread_ms", "median"),
        ratio_median=("wall_over_thread", "median"), ratio_max=("wall_over_thread", "max")).reset_index()
    summary.to_csv(args.out / "summary.csv", index=False)
    with pd.option_context("display.float_format", "{:.4f}".format, "display.width", 160):
        print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
