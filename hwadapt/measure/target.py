"""A table's target: where its measurements were taken, and how later measurements join
its time base (the same agent settings, a matching fingerprint, its probe at its
reference level). Apart from pricing: a predictor prices without a device at hand."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from device_agents import DeviceAgent, make_agent
from hwadapt.arch.spec import Arch
from hwadapt.errors import HwadaptError
from hwadapt.measure.protocol import MeasurePlan, default_plan
from hwadapt.measure.windows import EndToEnd, Probe, measure_in_windows

# fingerprint fields on which a table and a measurement (or a resumed run) must agree
TARGET_FIELDS = ("device", "threads", "runtime_version", "delegate", "clock", "estimator")


class TargetMismatchError(HwadaptError):
    """Measurements from another device, runtime or setting than a table's."""


def target_fingerprint(agent: DeviceAgent, plan: MeasurePlan | None = None) -> dict[str, Any]:
    """The agent's fingerprint and the estimator its measurements take: two tables, or a
    table and a measurement, compare only when both agree (the fastest inference reads
    lower than an envelope of medians)."""
    return {**agent.fingerprint(), "estimator": (plan or default_plan(agent)).estimator}


@dataclass(frozen=True)
class Target:
    backend: str
    fingerprint: dict[str, Any]
    probe_arch: dict[str, Any]  # the probe's architecture (JSON form)
    reference_ms: float | None  # the probe's level on the table's time base
    force: bool = False  # compare with measurements whose fingerprint differs

    def agent(self) -> DeviceAgent:
        """An agent of the table's backend, thread count and clock."""
        options: dict[str, Any] = {"threads": int(self.fingerprint.get("threads", 1))}
        if "clock" in self.fingerprint:
            options["clock"] = self.fingerprint["clock"]
        return make_agent(self.backend, **options)

    def check(self, agent: DeviceAgent) -> None:
        """Refuse to compare with measurements from another device or runtime (unless forced)."""
        theirs = target_fingerprint(agent)
        for name in ("backend", *TARGET_FIELDS):
            ours = self.fingerprint.get(name)
            if ours != theirs.get(name) and not self.force:
                raise TargetMismatchError(f"LUT fingerprint differs from this target ({name}: {ours!r} vs "
                                          f"{theirs.get(name)!r}); re-profile here or pass --force")

    def probe(self) -> Probe:
        return Probe(Arch.from_dict(self.probe_arch), self.reference_ms)

    def measure(self, archs: Sequence[Arch], nets: Sequence | None = None, plan: MeasurePlan | None = None,
                on_batch: Callable[[int, int], None] | None = None) -> list[EndToEnd]:
        """Each network (with trained weights where ``nets`` gives them) measured end to end
        on this target, on the table's time base."""
        with self.agent() as agent:
            self.check(agent)
            found = measure_in_windows(agent, archs, nets, plan, self.probe(), on_batch=on_batch)
        return [EndToEnd.of(windows) for windows in found]
