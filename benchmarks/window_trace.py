"""What the repeat run's windows see, round by round, over minutes.

A repeat run (``predictor_accuracy.py``'s repeatability check) measures one network with
the probe: each window loads both afresh and alternates their rounds, and the protocol
takes the network's fastest round over the probe's fastest (x the table's probe
reference). This traces such windows back to back for ``--seconds`` (24 rounds each, the
protocol's most, every round's fastest inference kept) and compares, per window:

* ``raw``: the network's fastest round, uncorrected;
* ``protocol``: fastest / fastest, as ``measure_sessions`` takes it;
* ``paired_median`` / ``paired_low``: each network round over the mean of the two probe
  rounds around it, then the median / the mean of the fastest third of those ratios
  (a correction in step with the host, round by round, rather than window by window).

Per estimator: the window-to-window scatter (1.4826 x MAD of the log, %) and how often
five figures in a row, each the median of ``WINDOWS`` consecutive windows, agree within
3% (max vs min), over every stretch of the trace; and per minute, how far the probe ran
from its reference and how much the windows scattered. Writes ``rounds.csv`` (every
round; ``--from-csv`` re-reads one instead of measuring), ``estimators.csv``,
``minutes.csv`` and ``windows.png``.

    python benchmarks/window_trace.py --backend ort-cpu --family mobilenet_v1 --resolution 32 \\
        --seconds 480 --out benchmarks/results/window_trace
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
from hwadapt.measure import WINDOWS, default_probe
from hwadapt.measure.protocol import default_plan, prepare
from probe_choice import spread_pct  # sibling scripts: benchmarks/ is on the path
from probe_tracking import robust_pct

ROUNDS = 24
RUNS = 5  # figures per stretch, as the repeatability check's agent runs
WINDOW_LEVELS = ("raw", "protocol", "paired_median", "paired_low")


def trace(backend: str, family: str, resolution: int, seconds: float) -> pd.DataFrame:
    """Every round of back-to-back windows: the network's (``who`` = model) and the probe's
    (one more than the network's, so each network round sits between two)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp, make_agent(backend) as agent:
        suffix, plan = agent.model_format, default_plan(agent)
        model = export(build(family, resolution=resolution, num_classes=10), suffix, Path(tmp) / f"m.{suffix}")
        probe = export(default_probe(resolution).arch, suffix, Path(tmp) / f"p.{suffix}")
        end, window = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            sessions = {"model": agent.open(model), "probe": agent.open(probe)}
            runs = {who: prepare(session, plan) for who, session in sessions.items()}
            order = ["probe", *["model", "probe"] * ROUNDS]
            for who in order:
                rows.append({"window": window, "who": who, "t": time.time(),
                             "ms": sessions[who].time_round(runs[who], "min")})
            for session in sessions.values():
                session.close()
            window += 1
    return pd.DataFrame(rows)


def per_window(rounds: pd.DataFrame, reference_ms: float) -> pd.DataFrame:
    rows = []
    for window, found in rounds.groupby("window"):
        model = found.loc[found["who"] == "model", "ms"].to_numpy()
        probe = found.loc[found["who"] == "probe", "ms"].to_numpy()
        paired = np.sort(model / ((probe[:-1] + probe[1:]) / 2)) * reference_ms
        rows.append({"window": window, "t": found["t"].min(), "probe_ms": probe.min(), "raw": model.min(),
                     "protocol": model.min() / probe.min() * reference_ms,
                     "paired_median": float(np.median(paired)),
                     "paired_low": float(paired[: max(1, len(paired) // 3)].mean())})
    return pd.DataFrame(rows)


def scatter_pct(levels: pd.Series) -> float:
    return robust_pct(np.log(levels))


def stretch_spreads(levels: np.ndarray) -> np.ndarray:
    """Spread (max vs min, %) of every RUNS consecutive figures, each the median of WINDOWS windows."""
    figures = np.array([np.median(levels[i:i + WINDOWS]) for i in range(0, len(levels) - WINDOWS + 1, WINDOWS)])
    return np.array([spread_pct(figures[j:j + RUNS]) for j in range(len(figures) - RUNS + 1)])


def estimator_table(windows: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for name in WINDOW_LEVELS:
        spreads = stretch_spreads(windows[name].to_numpy())
        found = len(spreads) > 0
        rows.append({"estimator": name, "window_scatter_pct": scatter_pct(windows[name]),
                     "stretches": len(spreads), "within_3pct": float(np.mean(spreads <= 3)) if found else np.nan,
                     "median_spread_pct": float(np.median(spreads)) if found else np.nan})
    return pd.DataFrame(rows)


def minute_table(windows: pd.DataFrame, reference_ms: float) -> pd.DataFrame:
    minute = ((windows["t"] - windows["t"].min()) // 60).astype(int)
    return windows.groupby(minute).apply(lambda found: pd.Series({
        "windows": len(found), "probe_dev_pct": (found["probe_ms"].median() / reference_ms - 1) * 100,
        "raw_scatter_pct": scatter_pct(found["raw"]), "protocol_scatter_pct": scatter_pct(found["protocol"])}),
        include_groups=False).rename_axis("minute").reset_index()


def windows_png(windows: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = windows["t"] - windows["t"].min()
    fig, ax = plt.subplots(figsize=(9, 4))
    for name in ("raw", "protocol"):
        ax.plot(seconds, windows[name] / windows["protocol"].median(), ".", ms=2, label=name)
    ax.set(xlabel="s", ylabel="window level / median protocol level", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="ort-cpu")
    parser.add_argument("--family", default="mobilenet_v1")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=480)
    parser.add_argument("--reference-ms", type=float,
                        help="the probe reference to scale to (a table's); default: the trace's median probe")
    parser.add_argument("--from-csv", type=Path, help="a rounds.csv this script wrote: analyse it, measure nothing")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/window_trace"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_csv:
        rounds = pd.read_csv(args.from_csv)
    else:
        rounds = trace(args.backend, args.family, args.resolution, args.seconds)
        rounds.to_csv(args.out / "rounds.csv", index=False)
    reference = args.reference_ms or float(rounds.loc[rounds["who"] == "probe"].groupby("window")["ms"].min().median())
    windows = per_window(rounds, reference)
    estimators, minutes = estimator_table(windows), minute_table(windows, reference)
    estimators.to_csv(args.out / "estimators.csv", index=False)
    minutes.to_csv(args.out / "minutes.csv", index=False)
    windows_png(windows, args.out / "windows.png", f"{args.family} {args.resolution}px {args.backend}")
    with pd.option_context("display.float_format", "{:.2f}".format, "display.width", 200):
        print(f"{len(windows)} windows over {(windows['t'].max() - windows['t'].min()) / 60:.1f} min")
        print(estimators.to_string(index=False))
        print(minutes.to_string(index=False))


if __name__ == "__main__":
    main()
