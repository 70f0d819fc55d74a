"""Do huge pages make weight-heavy networks faster or steadier on this host?

The full-width MobileNetV1 at 32 px (12.8 MB of weights) is the network whose fastest
inference moves most between stretches of the host ("Which models slow down together"
in ``benchmarks/README.md``). One candidate besides the shared cache: the second-level
data TLB, which with 4 KB pages covers about 12 MB on this AMD host (3072 entries), so
that every inference would walk page tables, and a walk costs more while a neighbour
streams memory. glibc can back large allocations with transparent huge pages
(``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``, read at process start; the host's THP mode
is ``madvise``), which would take the TLB out of the picture.

In ``--pairs`` pairs of fresh processes, one with the tunable and one without (order
alternating), each times single inferences of ``--models`` (``host_floor.py``'s, one
block of ``--block-s`` seconds) and reports each model's fastest inference and the
process's anonymous huge pages. Per backend, model and arm: the median fastest inference
over the pairs, its spread (max vs min, %), the median of the paired ratios (huge pages
over 4 KB pages) and of the huge pages mapped.

    python benchmarks/huge_pages.py --out benchmarks/results/huge_pages
"""
from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from host_floor import MODELS, measure  # a sibling script: benchmarks/ is on the path
from probe_choice import spread_pct

HUGE_TUNABLE = "glibc.malloc.hugetlb=1"
ARMS = {"4k": "", "huge": HUGE_TUNABLE}


def anon_huge_mb() -> float:
    """The anonymous memory of this process backed by huge pages, in MB."""
    text = Path("/proc/self/smaps_rollup").read_text()
    return int(re.search(r"^AnonHugePages:\s+(\d+) kB", text, re.M).group(1)) / 1024


def child(backend: str, resolution: int, models: list[str], block_s: float) -> None:
    levels = measure(backend, resolution, models, blocks=1, block_s=block_s, seed=0, clock="wall")
    levels["anon_huge_mb"] = anon_huge_mb()
    print(levels.to_json(orient="records"))


def one_process(arm: str, backend: str, resolution: int, models: str, block_s: float) -> pd.DataFrame:
    env = {**os.environ, "GLIBC_TUNABLES": ARMS[arm]}
    done = subprocess.run([sys.executable, __file__, "--child", backend, str(resolution), models, str(block_s)],
                          env=env, capture_output=True, text=True, check=True)
    levels = pd.read_json(io.StringIO(done.stdout.strip().splitlines()[-1]), orient="records")
    return levels.assign(arm=arm)


def summarise(levels: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (backend, px, model), one in levels.groupby(["backend", "px", "model"], sort=False):
        by_arm = one.pivot_table(index="pair", columns="arm", values="min_ms")
        row = {"backend": backend, "px": px, "model": model,
               "huge / 4k (paired median)": round(float((by_arm["huge"] / by_arm["4k"]).median()), 3)}
        for arm in ARMS:
            fastest = one[one["arm"] == arm]
            row |= {f"{arm} ms": round(float(fastest["min_ms"].median()), 4),
                    f"{arm} spread %": round(spread_pct(fastest["min_ms"]), 1),
                    f"{arm} huge MB": round(float(fastest["anon_huge_mb"].median()), 0)}
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/huge_pages"))
    parser.add_argument("--backends", default="ort-cpu,litert-cpu")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--models", default="v1 x1.0,v1 x1.25,probe", help=f"comma-separated, of: {', '.join(MODELS)}")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--block-s", type=float, default=10.0)
    parser.add_argument("--child", nargs=4, metavar=("BACKEND", "PX", "MODELS", "BLOCK_S"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        backend, px, models, block_s = args.child
        child(backend, int(px), models.split(","), float(block_s))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    found = []
    for backend in args.backends.split(","):
        for pair in range(args.pairs):
            order = list(ARMS) if pair % 2 == 0 else list(ARMS)[::-1]
            for arm in order:
                found.append(one_process(arm, backend, args.resolution, args.models, args.block_s).assign(pair=pair))
                print(f"{backend} pair {pair} {arm} done", flush=True)
    levels = pd.concat(found, ignore_index=True)
    levels.to_csv(args.out / "levels.csv", index=False)
    table = summarise(levels)
    table.to_csv(args.out / "summary.csv", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
