"""``report.json``: what every adaptation method reports, in one layout.

A report of another layout is refused with a message that says so; a NetAdapt report
written before reports had a layout version is read, with the fields it lacks (the
measurement's spread, the wall time) left empty.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwadapt.errors import HwadaptError

REPORT_FILE = "report.json"
REPORT_FORMAT = 1
LEGACY_FIELDS = ("budget_ms", "predicted_ms", "measured_ms", "base_measured_ms", "test_accuracy", "arch")


class ReportError(HwadaptError):
    """A report that is missing, malformed, or of a layout this hwadapt does not read."""


@dataclass
class AdaptReport:
    method: str
    budget_ms: float  # as the predictor prices it
    predicted_ms: float
    measured_ms: float  # end to end on the LUT's target: the median of its windows
    measured_spread_pct: float | None  # how far those windows disagreed (max - min over the median)
    base_predicted_ms: float
    base_measured_ms: float
    base_measured_spread_pct: float | None
    test_accuracy: float
    base_test_accuracy: float
    wall_s: float | None  # the method's own time (training included), over every resumed run
    arch: dict[str, Any]
    exports: dict[str, str]  # format -> file: the adapted network's checkpoint, ONNX and TFLite
    details: dict[str, Any] = field(default_factory=dict)  # the method's own figures
    format: int = REPORT_FORMAT

    @property
    def within_budget(self) -> bool:
        return self.measured_ms <= self.budget_ms

    @property
    def prediction_error(self) -> float:
        """Measured over predicted, minus one."""
        return self.measured_ms / self.predicted_ms - 1.0

    @property
    def measured_speedup(self) -> float:
        return self.base_measured_ms / self.measured_ms

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(within_budget=self.within_budget, prediction_error=self.prediction_error,
                    measured_speedup=self.measured_speedup)
        return data

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, default=_plain) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> AdaptReport:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ReportError(f"no report at {path}") from None
        except json.JSONDecodeError as exc:
            raise ReportError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ReportError(f"{path} is not an adaptation report")
        if "format" not in data:
            return cls._legacy(data, path)
        if data["format"] != REPORT_FORMAT:
            raise ReportError(f"{path} has report format {data['format']}; this hwadapt reads format {REPORT_FORMAT}")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(n for n in names if n not in data and n not in ("details",))
        if missing:
            raise ReportError(f"{path} lacks {', '.join(missing)}: not a complete report")
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def _legacy(cls, data: dict[str, Any], path: Path) -> AdaptReport:
        """A NetAdapt report of the layout before ``format``."""
        missing = [k for k in LEGACY_FIELDS if k not in data]
        if missing:
            raise ReportError(f"{path} is of no layout this hwadapt knows (no format field, and it lacks "
                              f"{', '.join(missing)})")
        return cls("netadapt", data["budget_ms"], data["predicted_ms"], data["measured_ms"], None,
                   data.get("base_predicted_ms", math.nan), data["base_measured_ms"], None, data["test_accuracy"],
                   data.get("base_test_accuracy", math.nan), None, data["arch"],
                   {k: data[k] for k in ("onnx", "tflite") if k in data},
                   {k: data[k] for k in ("iterations", "stop_reason", "stop_message") if k in data})


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
