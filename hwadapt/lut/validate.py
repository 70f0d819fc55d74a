"""Validating a LUT: predict random architectures and measure them end to end."""
from __future__ import annotations

from dataclasses import asdict, dataclass
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from hwadapt.arch.families import family_space
from hwadapt.arch.spec import Arch
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.measure import MeasurePlan, measure_archs

VALIDATION_STREAM = 1  # calibration models use stream 0 of a seed
BATCH_SIZE = 8  # architectures measured together in one window
PASSES = 3  # windows per architecture (the median is kept)


@dataclass
class ValidationReport:
    n: int
    within_5pct: float
    within_10pct: float
    mape: float
    rmse_ms: float
    spearman: float
    bias_pct: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def sample_archs(family: str, resolution: int, num_classes: int, samples: int, seed: int) -> list[Arch]:
    """Random members of a family (random per-layer widths, or random choices of a search
    space), from a seed stream the calibration never uses."""
    sample = family_space(family).sample
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
             plan: MeasurePlan | None = None, on_batch=None, passes: int = PASSES) -> tuple[ValidationReport, pd.DataFrame]:
    """Measure ``samples`` random architectures on the LUT's own agent and compare.

    Every architecture is measured in ``passes`` windows (batches in reverse order on
    alternate passes) and keeps the median: on a shared host a whole batch window can run
    10% slow while the probe, a smaller model, does not notice (benchmarks README, run 7),
    and one where the probe ran slow reads 5-15% fast (run 9), so neither one window nor
    the fastest of two can be trusted."""
    meta = predictor.meta
    archs = sample_archs(meta.family, meta.resolution, meta.num_classes, samples, seed)
    predicted = np.array([predictor.predict_ms(a) for a in archs])
    starts = list(range(0, len(archs), batch_size))
    by_pass = np.full((passes, len(archs)), np.nan)
    with predictor.make_agent() as agent:
        predictor.check_target(agent)
        for index in range(passes):
            for start in (starts if index % 2 == 0 else starts[::-1]):
                chunk = slice(start, start + batch_size)
                by_pass[index, chunk] = [m.median_ms for m in measure_archs(agent, archs[chunk], plan=plan,
                                                                           probe=predictor.probe())]
                if on_batch:
                    on_batch(len(archs[chunk]))
    measured = np.median(by_pass, axis=0)
    table = pd.DataFrame({"arch": [a.to_json(indent=None) for a in archs], "predicted_ms": predicted,
                          "measured_ms": measured, "error_pct": (predicted - measured) / measured * 100,
                          "pass_spread_pct": (by_pass.max(axis=0) - by_pass.min(axis=0)) / measured * 100})
    return summarise(predicted, measured), table
