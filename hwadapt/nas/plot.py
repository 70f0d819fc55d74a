"""The search's figure: E[latency] and the argmax's latency per epoch against the target."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SEARCH_PLOT = "search.png"
BAND = 0.10  # the +-10% band drawn around the target


def search_png(path: str | Path, history: list[dict], target_ms: float, fastest_ms: float,
               slowest_ms: float) -> Path:
    """Per epoch: E[latency] at the epoch's end, with the range it took over the epoch's
    architecture steps as error bars; the sharpened expectation the ``target`` form holds
    on the target; the predicted latency of the argmax. The target with a +-10% band and
    the space's fastest and slowest members frame them."""
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.axhspan(target_ms * (1 - BAND), target_ms * (1 + BAND), color="tab:green", alpha=0.12,
               label=f"target ±{BAND:.0%}")
    ax.axhline(target_ms, color="tab:green", lw=1.5, label=f"target {target_ms:.4g} ms")
    for level, name in ((fastest_ms, "fastest member"), (slowest_ms, "slowest member")):
        ax.axhline(level, color="grey", lw=0.8, ls=":")
        ax.annotate(name, (epochs[0] if epochs else 1, level), fontsize=7, color="grey", va="bottom")
    expected = [h["expected_ms"] for h in history]
    ranges = [h.get("expected_ms_range") or [e, e] for h, e in zip(history, expected)]
    ax.errorbar(epochs, expected, yerr=[[e - r[0] for e, r in zip(expected, ranges)],
                                        [r[1] - e for e, r in zip(expected, ranges)]],
                fmt="o-", color="tab:blue", ms=4, capsize=3, label="E[latency] (bars: range over the epoch)")
    sharpened = [(h["epoch"], h["sharpened_ms"]) for h in history if h.get("sharpened_ms") is not None]
    if sharpened:
        ax.plot(*zip(*sharpened), "s--", color="tab:purple", ms=4, label="sharpened E[latency] (constrained)")
    ax.plot(epochs, [h["argmax_predicted_ms"] for h in history], "D-", color="tab:red", ms=4,
            label="argmax (the derived network, before swaps)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title("search: latency per epoch against the target", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
