"""How many rounds an op row needs: the protocol's stop rule under caps, replayed.

Draws ``--rows`` op rows of a family's grid (as ``hwadapt profile`` plans them) and times
each for all of ``--rounds`` rounds, in windows of 12 with the probe between rounds, as a
table build does, in two passes over the same rows. Then replays the protocol's stop
rule (``MeasurePlan`` defaults, as ``_Track.stable`` applies it) on each row's rounds
under each cap in ``--caps``: the rounds it would have taken, its probe-corrected level
then against its level over all rounds of the pass, and how far its levels of the two
passes are apart (the figure a cap must not make worse). Prints a table; writes
``rows.csv``, ``summary.csv`` and ``deviation.png``.

    python benchmarks/round_cap.py --backend ort-cpu --family mobilenet_v1 --resolution 224 \\
        --out benchmarks/results/round_cap
"""
from __future__ import annotations

import argparse
import random
import tempfile
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from device_agents import make_agent  # noqa: E402
from hwadapt.lut.profile import Job, plan_jobs  # noqa: E402
from hwadapt.lut.space import grid_settings  # noqa: E402
from hwadapt.materialize import export  # noqa: E402
from hwadapt.measure import default_probe  # noqa: E402
from hwadapt.measure import protocol  # noqa: E402

WINDOW = 12  # op rows per window, as a build batches them


def timed_rounds(backend: str, jobs: list[Job], resolution: int, rounds: int) -> list[tuple[list[float], list[float], int]]:
    """Each job's round values, its window's probe values and its runs per round, from
    windows of ``WINDOW`` that run every job for ``rounds`` rounds."""
    captured = []
    summarise = protocol._summarise

    def keep(track, probe_values, reference_ms, estimator):
        captured.append((list(track.values), list(probe_values), track.runs))
        return summarise(track, probe_values, reference_ms, estimator)

    protocol._summarise = keep  # the protocol keeps no round values; read them on the way out
    try:
        with make_agent(backend, threads=1) as agent, tempfile.TemporaryDirectory() as tmp:
            plan = replace(protocol.default_plan(agent), min_rounds=rounds, max_rounds=rounds)
            fmt = agent.model_format
            probe = agent.open(export(default_probe(resolution).arch, fmt, Path(tmp) / f"probe.{fmt}"))
            for start in range(0, len(jobs), WINDOW):
                sessions = [agent.open(job.write(Path(tmp), fmt, i)) for i, job in enumerate(jobs[start:start + WINDOW])]
                protocol.measure_sessions(agent, sessions, plan, probe, None)
                for session in sessions:
                    session.close()
                print(f"{start + len(sessions)}/{len(jobs)} rows timed", flush=True)
            probe.close()
    finally:
        protocol._summarise = summarise
    return captured


def stop_round(values: np.ndarray, runs: int, plan: protocol.MeasurePlan) -> int:
    """The round after which the stop rule of ``plan`` ends a track with these values."""
    return next((m for m in range(1, len(values)) if protocol._Track(None, runs, list(values[:m])).stable(plan)),
                len(values))


def capped(values: list[float], probe_values: list[float], runs: int, cap: int) -> tuple[int, float]:
    """The rounds the stop rule takes under ``cap`` and the probe-relative level then."""
    values, probe_values = np.asarray(values), np.asarray(probe_values)
    stop = stop_round(values, runs, replace(protocol.MeasurePlan(), max_rounds=cap))
    return stop, values[:stop].min() / probe_values[:stop + 1].min()  # probe: before the first pass, after each


def replay(passes: list[list[tuple]], caps: list[int]) -> pd.DataFrame:
    rows = []
    for index, timed in enumerate(zip(*passes)):
        full = [capped(*one, cap=len(one[0]))[1] for one in timed]
        for cap in caps:
            found = [capped(*one, cap=cap) for one in timed]
            for number, ((stop, level), whole) in enumerate(zip(found, full)):
                rows.append({"row": index, "pass": number, "cap": cap, "rounds": stop, "at_cap": stop >= cap,
                             "deviation_pct": (level / whole - 1) * 100,
                             "passes_apart_pct": abs(found[1][1] / found[0][1] - 1) * 100})
    return pd.DataFrame(rows)


def summary(rows: pd.DataFrame, rounds: int) -> pd.DataFrame:
    rows = rows.assign(abs_dev=rows["deviation_pct"].abs())
    return (rows.groupby("cap").agg(mean_rounds=("rounds", "mean"), at_cap=("at_cap", "mean"),
                                    mean_deviation_pct=("deviation_pct", "mean"),
                                    p50_abs_deviation_pct=("abs_dev", "median"),
                                    p90_abs_deviation_pct=("abs_dev", lambda x: float(np.percentile(x, 90))),
                                    p50_passes_apart_pct=("passes_apart_pct", "median"),
                                    p90_passes_apart_pct=("passes_apart_pct", lambda x: float(np.percentile(x, 90))))
            .assign(share_of_rounds=lambda f: f["mean_rounds"] / rounds).reset_index().round(3))


def deviation_png(rows: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for cap, group in rows.groupby("cap"):
        ordered = np.sort(group["deviation_pct"].abs())
        ax.plot(ordered, np.arange(1, len(ordered) + 1) / len(ordered), label=f"cap {cap}")
    ax.set_xlabel("|level - level over all rounds| (%)")
    ax.set_ylabel("share of op rows")
    ax.set_xlim(0, 10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="ort-cpu")
    parser.add_argument("--family", default="mobilenet_v1")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--rows", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=24, help="rounds every row is timed for (the old cap)")
    parser.add_argument("--caps", default="24,16,12")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/round_cap"))
    args = parser.parse_args()
    grid = grid_settings(args.family, args.backend)
    jobs = [job for job in plan_jobs(args.family, args.resolution, 10, 1, 0, grid) if job.op is not None]
    random.Random(args.seed).shuffle(jobs)
    passes = [timed_rounds(args.backend, jobs[:args.rows], args.resolution, args.rounds) for _ in range(2)]
    rows = replay(passes, [int(c) for c in args.caps.split(",")])
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.backend}_{args.family}_{args.resolution}"
    rows.to_csv(args.out / f"{stem}.rows.csv", index=False)
    table = summary(rows, args.rounds)
    table.to_csv(args.out / f"{stem}.summary.csv", index=False)
    deviation_png(rows, args.out / f"{stem}.deviation.png")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
