"""Validating a LUT: predict random architectures and measure them end to end."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from hwadapt.arch.spec import Arch
from hwadapt.families import get_family
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.measure import (BATCH_SIZE, WINDOWS, EndToEnd, MeasurePlan, Measurement, measure_in_windows,
                             window_spread_pct)
from hwadapt.progress import QUIET, Reporter

VALIDATION_STREAM = 1  # calibration models use stream 0 of a seed


@dataclass
class ValidationReport:
    n: int
    within_5pct: float
    within_10pct: float
    mape: float
    rmse_ms: float
    spearman: float
    bias_pct: float
    noisy: int = 0  # figures whose windows disagreed by more than NOISY_PCT
    max_spread_pct: float = 0.0  # the widest disagreement of one figure's windows

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def sample_archs(family: str, resolution: int, num_classes: int, samples: int, seed: int) -> list[Arch]:
    """Random members of a family (random per-layer widths, or random choices of a search
    space), from a seed stream the calibration never uses."""
    sample = get_family(family).space.sample
    return [sample(resolution, num_classes, np.random.default_rng([seed, VALIDATION_STREAM, i]))
            for i in range(samples)]


def summarise(predicted: np.ndarray, measured: np.ndarray) -> ValidationReport:
    err = (predicted - measured) / measured
    rho = spearmanr(predicted, measured).statistic if len(measured) > 1 else float("nan")
    return ValidationReport(
        n=len(measured),
        within_5pct=float(np.mean(np.abs(err) <= 0.05)),
        within_10pct=float(np.mean(np.abs(err) <= 0.10)),
        mape=float(np.mean(np.abs(err)) * 100),
        rmse_ms=float(np.sqrt(np.mean((predicted - measured) ** 2))),
        spearman=float(rho),
        bias_pct=float(np.mean(err) * 100),
    )


def validate(predictor: LatencyPredictor, samples: int, seed: int, batch_size: int = BATCH_SIZE,
             plan: MeasurePlan | None = None, reporter: Reporter = QUIET) -> tuple[ValidationReport, pd.DataFrame]:
    """Measure ``samples`` random architectures on the LUT's own target, each in separate
    windows (the median kept, as for every end-to-end figure: :func:`measure_in_windows`),
    and compare with the prediction."""
    meta, target = predictor.meta, predictor.target
    archs = sample_archs(meta.family, meta.resolution, meta.num_classes, samples, seed)
    predicted = np.array([predictor.predict_ms(a) for a in archs])
    task = reporter.start("measuring", total=samples * WINDOWS)
    with target.agent() as agent:
        target.check(agent)
        by_arch = measure_in_windows(agent, archs, plan=plan, probe=target.probe(), batch_size=batch_size,
                                     on_batch=lambda done, planned: reporter.update(task, done=done, total=planned))
    reporter.finish(task)
    figures = [EndToEnd.of(w) for w in by_arch]
    measured = np.array([f.ms for f in figures])
    table = pd.DataFrame({"arch": [a.to_json(indent=None) for a in archs], "predicted_ms": predicted,
                          "measured_ms": measured, "error_pct": (predicted - measured) / measured * 100,
                          "pass_spread_pct": [window_spread_pct(w) for w in by_arch],
                          "windows": [len(w) for w in by_arch], **window_columns(by_arch)})
    report = summarise(predicted, measured)
    report.noisy = sum(f.noisy for f in figures)
    report.max_spread_pct = max(f.spread_pct for f in figures)
    return report, table


def window_columns(by_arch: list[list[Measurement]]) -> dict[str, list[str]]:
    """Every window's probe-corrected level, raw level and probe level, per network (JSON
    lists): what another estimator than the median window could be tried on, offline."""
    columns = {"window_ms": "median_ms", "window_raw_ms": "raw_ms", "window_probe_ms": "probe_ms"}
    return {column: [json.dumps([getattr(m, field) for m in windows]) for windows in by_arch]
            for column, field in columns.items()}
