"""Desktop agents: ONNX Runtime CPU and LiteRT CPU (XNNPACK), both in-process.

Every inference is timed alone by the wall clock, and the protocol keeps a model's
fastest one (``estimator="fastest"``, see ``hwadapt.measure.protocol``): on a shared
host the other tenants only ever add time (preemption, and contention for the shared
cache, which slows a network with 13 MB of weights by up to 50% while a small one does
not notice), and among the thousands of inferences of a window some run untouched
(hwadapt's docs/measurement.md). The thread CPU clock (``clock="thread"``, single thread
only) leaves out preempted time but, in a VM, also the hypervisor's steal time, in
coarse steps, so it can read a 0.1 ms inference as 0: no clock for a minimum.
"""
from __future__ import annotations

import time
from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from device_agents.base import AgentError, DeviceAgent, ModelSession, host_fingerprint


CLOCKS = {"thread": time.thread_time_ns, "wall": time.perf_counter_ns}
ROUND_STATISTICS = {"median": np.median, "min": np.min}


def resolve_clock(clock: str, threads: int) -> str:
    if clock not in CLOCKS:
        raise AgentError(f"unknown clock {clock!r}; expected wall or thread")
    if clock == "thread" and threads != 1:
        raise AgentError("the thread clock only measures single-threaded inference; use the wall clock")
    return clock


class _InProcessSession(ModelSession):
    """A session whose inferences run on the calling thread, so each can be timed alone."""

    clock: str

    @abstractmethod
    def _step(self) -> None:
        """One inference."""

    def time_runs(self, runs: int) -> np.ndarray:
        """Each of ``runs`` back-to-back inferences, timed alone, in ms."""
        times = np.empty(runs)
        clock = CLOCKS[self.clock]
        for i in range(runs):
            start = clock()
            self._step()
            times[i] = clock() - start
        return times / 1e6

    def time_round(self, runs: int, statistic: str = "median") -> float:
        return float(ROUND_STATISTICS[statistic](self.time_runs(runs)))


def ort_session_options(threads: int, spinning: bool):
    """ONNX Runtime session options as the agent runs models (all graph optimisations, as deployed)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3
    return options


class OrtSession(_InProcessSession):
    def __init__(self, path: Path, threads: int, spinning: bool, clock: str) -> None:
        self.clock = clock
        import onnxruntime as ort

        options = ort_session_options(threads, spinning)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own exception types
            raise AgentError(f"ONNX Runtime cannot load {path}: {exc}") from exc
        rng = np.random.default_rng(0)
        self.binding = self.session.io_binding()
        for spec in self.session.get_inputs():
            data = rng.standard_normal(spec.shape).astype(np.float32)
            self.binding.bind_ortvalue_input(spec.name, ort.OrtValue.ortvalue_from_numpy(data))
        for spec in self.session.get_outputs():
            self.binding.bind_output(spec.name)
        self.session.run_with_iobinding(self.binding)

    def _step(self) -> None:
        self.session.run_with_iobinding(self.binding)


class OrtCpuAgent(DeviceAgent):
    """ONNX Runtime, CPU execution provider, all graph optimisations (as deployed)."""

    backend = "ort-cpu"
    model_format = "onnx"

    def __init__(self, threads: int = 1, spinning: bool = True, clock: str = "wall") -> None:
        super().__init__(threads)
        self.spinning = spinning
        self.clock = resolve_clock(clock, threads)

    def fingerprint(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {**host_fingerprint(), "backend": self.backend, "runtime": "onnxruntime",
                "runtime_version": ort.__version__, "threads": self.threads,
                "delegate": "CPUExecutionProvider", "spinning": self.spinning, "clock": self.clock}

    def open(self, model_path: Path) -> ModelSession:
        return OrtSession(Path(model_path), self.threads, self.spinning, self.clock)


class LiteRtSession(_InProcessSession):
    def __init__(self, path: Path, threads: int, clock: str) -> None:
        self.clock = clock
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise AgentError(f"LiteRT cannot load {path}: {exc}") from exc
        rng = np.random.default_rng(0)
        for spec in self.interpreter.get_input_details():
            self.interpreter.set_tensor(spec["index"], rng.standard_normal(spec["shape"]).astype(np.float32))
        self.interpreter.invoke()

    def _step(self) -> None:
        self.interpreter.invoke()


class LiteRtCpuAgent(DeviceAgent):
    """LiteRT (TFLite) interpreter with its default XNNPACK CPU delegate."""

    backend = "litert-cpu"
    model_format = "tflite"

    def __init__(self, threads: int = 1, clock: str = "wall") -> None:
        super().__init__(threads)
        self.clock = resolve_clock(clock, threads)

    def fingerprint(self) -> dict[str, Any]:
        try:
            from importlib.metadata import version

            runtime_version = version("ai-edge-litert")
        except Exception:  # pragma: no cover - metadata missing in odd installs
            runtime_version = "unknown"
        return {**host_fingerprint(), "backend": self.backend, "runtime": "ai-edge-litert",
                "runtime_version": runtime_version, "threads": self.threads, "delegate": "xnnpack",
                "clock": self.clock}

    def open(self, model_path: Path) -> ModelSession:
        try:
            import ai_edge_litert  # noqa: F401
        except ImportError as exc:
            raise AgentError("the litert-cpu backend needs `pip install hwadapt[tflite]`") from exc
        return LiteRtSession(Path(model_path), self.threads, self.clock)
