"""The measurement protocol shared by every agent.

A shared host (or a throttling phone) changes speed in steps lasting seconds: the same
model's median moves by 10-30% between back-to-back blocks. Two things make numbers
repeatable anyway:

* **Interleaved rounds, and an estimator that discards slow ones.** Models are timed in
  short rounds, interleaved with each other. Desktop agents report each round's
  *fastest* inference and keep the fastest of all (``estimator="fastest"``): other
  tenants only ever add time, and among thousands of inferences some run untouched.
  Phones run a few long ``benchmark_model`` invocations that report a mean; there the
  level is the median of those means (``"median"``) or the mean of their fastest third
  (``"envelope"``).
* **A reference probe in the same window.** A fixed probe model is timed between the
  rounds. A slow-down that covers the whole window (a phone throttling, a host core
  busy with a neighbour for seconds) slows the probe too; the model's level is taken
  *relative to the probe* and scaled by the probe's reference level (stored in a LUT's
  sidecar), so tables and later end-to-end measurements share one time base.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from device_agents.base import DeviceAgent, ModelSession


@dataclass(frozen=True)
class MeasurePlan:
    """How long and how often to time models."""

    round_ms: float = 15.0  # wall time one round of one model aims at (sets runs per round)
    min_runs: int = 3
    max_runs: int = 2000
    fixed_runs: int | None = None  # agents with a per-invocation cost (phones) fix it
    warmup_runs: int = 5
    min_rounds: int = 6
    max_rounds: int = 24
    # per model and window, as far as max_rounds allows: at 224 px a round holds 3-5
    # inferences, and the fastest of a few dozen still moves (docs/measurement.md)
    min_inferences: int = 60
    rel_tol: float = 0.005  # stop once the level's standard error is below this fraction
    time_cap_s: float = 30.0  # per batch of models
    shuffle: bool = True
    seed: int = 0
    # see ESTIMATORS: "fastest" (in-process agents), "envelope", "median" (a phone's few,
    # long benchmark_model invocations, each reporting a mean)
    estimator: str = "fastest"


@dataclass
class Measurement:
    """A model's latency. ``median_ms`` is the protocol's estimate (probe-corrected level);
    the spread figures describe the round values after correction."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    std_ms: float
    n: int
    rounds: int
    raw_ms: float  # the level before probe correction
    probe_ms: float | None = None  # the probe's level in the same window
    reference_ms: float | None = None  # the probe level ``median_ms`` is scaled to (None: probe_ms)
    conditions: list[dict[str, Any]] = field(default_factory=list)

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row.pop("conditions")
        row.pop("reference_ms")  # a table's reference is in its sidecar
        return row

    def probe_deviation_pct(self) -> float:
        """How far the probe ran from its reference level in this window, in % (0 when
        the window is on its own probe's time base)."""
        if self.probe_ms is None or self.reference_ms is None:
            return 0.0
        return (self.probe_ms / self.reference_ms - 1) * 100


def lower_envelope(values: Sequence[float]) -> float:
    """Mean of the fastest third (at least one) of round values."""
    ordered = np.sort(np.asarray(values, dtype=float))
    return float(ordered[: max(1, len(ordered) // 3)].mean())


@dataclass(frozen=True)
class Estimator:
    """How a model's rounds become its level."""

    round_statistic: str  # what each round reports: "median" (or a tool's mean) or "min"
    level: Callable[[Sequence[float]], float]


ESTIMATORS = {"fastest": Estimator("min", lambda values: float(np.min(values))),
              "envelope": Estimator("median", lower_envelope),
              "median": Estimator("median", lambda values: float(np.median(values)))}


@dataclass
class _Track:
    """Rounds collected for one model session."""

    session: ModelSession
    runs: int
    values: list[float] = field(default_factory=list)
    conditions: list[dict[str, Any]] = field(default_factory=list)

    def stable(self, plan: MeasurePlan) -> bool:
        if len(self.values) >= plan.max_rounds:
            return True
        if len(self.values) < plan.min_rounds or len(self.values) * self.runs < plan.min_inferences:
            return False
        best = np.sort(self.values)[: max(2, len(self.values) // 3)]
        sem = float(np.std(best, ddof=1) / np.sqrt(len(best)))
        return sem <= plan.rel_tol * float(best.mean())


def prepare(session: ModelSession, plan: MeasurePlan) -> int:
    """Warm ``session`` up and return how many inferences one of its rounds holds."""
    if plan.warmup_runs:
        session.time_round(plan.warmup_runs)
    if plan.fixed_runs:
        return plan.fixed_runs
    first = max(session.time_round(plan.min_runs), 1e-4)
    return int(np.clip(plan.round_ms / first, plan.min_runs, plan.max_runs))


def measure_sessions(agent: DeviceAgent, sessions: Sequence[ModelSession], plan: MeasurePlan,
                     probe: ModelSession | None = None, reference_ms: float | None = None,
                     on_round: Callable[[], None] | None = None) -> list[Measurement]:
    """Time ``sessions`` in interleaved rounds, with ``probe`` between rounds.

    With a probe, each level is ``model level / probe level x reference_ms`` (the probe's
    own level in this window when ``reference_ms`` is None).
    """
    estimator = ESTIMATORS[plan.estimator]
    rng = random.Random(plan.seed)
    tracks = [_Track(session, prepare(session, plan)) for session in sessions]
    probe_runs = 0
    probe_values: list[float] = []
    if probe is not None:
        probe_runs = prepare(probe, plan)
        probe_values.append(probe.time_round(probe_runs, estimator.round_statistic))
    deadline = time.monotonic() + plan.time_cap_s
    while True:
        active = [t for t in tracks if not t.stable(plan)]
        if not active or (time.monotonic() > deadline and all(len(t.values) >= 2 for t in tracks)):
            break
        if plan.shuffle:
            rng.shuffle(active)
        for track in active:
            track.conditions.append(agent.conditions())
            track.values.append(track.session.time_round(track.runs, estimator.round_statistic))
            if on_round:
                on_round()
        if probe is not None:
            probe_values.append(probe.time_round(probe_runs, estimator.round_statistic))
    return [_summarise(t, probe_values, reference_ms, estimator) for t in tracks]


def _summarise(track: _Track, probe_values: list[float], reference_ms: float | None,
               estimator: Estimator) -> Measurement:
    values = np.asarray(track.values)
    raw = estimator.level(values)
    scale, probe_level = 1.0, None
    if probe_values:
        probe_level = estimator.level(probe_values)
        scale = (reference_ms if reference_ms is not None else probe_level) / probe_level
    corrected = values * scale
    return Measurement(
        median_ms=raw * scale,
        p10_ms=float(np.percentile(corrected, 10)),
        p90_ms=float(np.percentile(corrected, 90)),
        std_ms=float(np.std(corrected)),
        n=int(track.runs * len(values)),
        rounds=len(values),
        raw_ms=raw,
        probe_ms=probe_level,
        reference_ms=reference_ms if probe_values else None,
        conditions=track.conditions,
    )


def default_plan(agent: DeviceAgent) -> MeasurePlan:
    """The protocol's defaults with the agent's own overrides."""
    return MeasurePlan(**agent.plan_overrides)


def measure_paths(agent: DeviceAgent, paths: Sequence[Path], plan: MeasurePlan | None = None,
                  probe_path: Path | None = None, reference_ms: float | None = None,
                  on_round: Callable[[], None] | None = None) -> list[Measurement]:
    """Open ``paths`` on ``agent`` and measure them together (see :func:`measure_sessions`)."""
    plan = plan or default_plan(agent)
    sessions = [agent.open(p) for p in paths]
    probe = agent.open(probe_path) if probe_path is not None else None
    try:
        return measure_sessions(agent, sessions, plan, probe, reference_ms, on_round)
    finally:
        for session in [*sessions, *([probe] if probe else [])]:
            session.close()
