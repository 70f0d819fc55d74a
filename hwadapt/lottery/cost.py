"""What a pruned network costs on a runtime: model files (dense or sparse forms, see
:mod:`hwadapt.lottery.sparse_export`) timed together on a device agent, each figure the
median of several windows with their spread, as every end-to-end figure in hwadapt.

All forms of one call are timed in the same windows (interleaved rounds, the order
reversed every other window), so a dense parent and its tickets are compared under the
same host conditions. The files are written once, not per window.
"""
from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from device_agents import make_agent
from hwadapt.lottery.masks import prunable
from hwadapt.lottery.sparse_export import save_form
from hwadapt.materialize.torch_net import Net
from hwadapt.measure import WINDOWS, EndToEnd, MeasurePlan, Measurement, measure_paths
from hwadapt.progress import QUIET, Reporter


@dataclass(frozen=True)
class Form:
    """A network written one way: its weights dense or sparse, and (TFLite) with SAME
    padding or explicit symmetric padding."""

    name: str
    net: Net
    sparse: bool = False
    symmetric_padding: bool = False


@dataclass(frozen=True)
class FormCost:
    name: str
    backend: str
    ms: float  # the median of the windows
    spread_pct: float  # how far the windows disagreed
    windows_ms: tuple[float, ...]
    file_bytes: int
    weight_sparsity: float  # zeros among the convolution weights


def weight_sparsity(net: Net) -> float:
    weights = list(prunable(net).values())
    return float(sum(int((w == 0).sum()) for w in weights) / max(sum(w.numel() for w in weights), 1))


def measure_forms(backend: str, forms: Sequence[Form], *, threads: int = 1, windows: int = WINDOWS,
                  plan: MeasurePlan | None = None, reporter: Reporter = QUIET) -> list[FormCost]:
    """Each form written in ``backend``'s format and timed there, all in the same windows."""
    with make_agent(backend, threads=threads) as agent, tempfile.TemporaryDirectory(prefix="hwadapt-forms-") as tmp:
        fmt = agent.model_format
        paths = [save_form(form.net.cpu().eval(), fmt, Path(tmp) / f"form{i}.{fmt}", sparse=form.sparse,
                           symmetric_padding=form.symmetric_padding) for i, form in enumerate(forms)]
        found: list[list[Measurement]] = [[] for _ in forms]
        task = reporter.start(f"timing {len(forms)} forms on {backend}", total=windows)
        for window in range(windows):
            order = list(range(len(forms)))[:: 1 if window % 2 == 0 else -1]
            for i, measurement in zip(order, measure_paths(agent, [paths[i] for i in order], plan)):
                found[i].append(measurement)
            reporter.advance(task)
        reporter.finish(task)
        figures = [EndToEnd.of(windows_of_form) for windows_of_form in found]
        return [FormCost(form.name, backend, figure.ms, figure.spread_pct, figure.windows_ms, path.stat().st_size,
                         weight_sparsity(form.net)) for form, figure, path in zip(forms, figures, paths)]
