"""The Pareto figure: test accuracy against measured latency, a method's family vs width multipliers."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _latency(frame: pd.DataFrame) -> pd.Series:
    """Measured latency where there is one, else the prediction."""
    measured = frame["measured_ms"] if "measured_ms" in frame else pd.Series(float("nan"), index=frame.index)
    return measured.fillna(frame["predicted_ms"])


def pareto_png(path: str | Path, family: pd.DataFrame | None = None, baseline: pd.DataFrame | None = None,
               budget_ms: float | None = None, title: str = "", method: str = "netadapt") -> Path:
    """Accuracy vs latency of a method's family (the networks on its way, its long-term
    fine-tuned result) and of the width-multiplier curve."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    if family is not None and len(family):
        steps = family[family["stage"] != "long-term"]
        ax.plot(_latency(steps), steps["test_accuracy"], "o-", color="tab:blue", ms=4,
                label=f"{method}: on the way (short-term fine-tuned)")
        final = family[family["stage"] == "long-term"]
        ax.plot(_latency(final), final["test_accuracy"], "*", color="tab:blue", ms=14,
                label=f"{method}: result (long-term fine-tuned)")
    if baseline is not None and len(baseline):
        ordered = baseline.sort_values("multiplier")
        ax.plot(_latency(ordered), ordered["test_accuracy"], "s--", color="tab:orange", label="width multiplier")
        for _, row in ordered.iterrows():
            ax.annotate(f"x{row['multiplier']:g}", (_latency(ordered).loc[row.name], row["test_accuracy"]),
                        textcoords="offset points", xytext=(4, -10), fontsize=8, color="tab:orange")
    if budget_ms is not None:
        ax.axvline(budget_ms, color="grey", ls=":", label=f"budget {budget_ms:.3g} ms")
    ax.set(xlabel="latency (ms, measured end to end)", ylabel="test accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
