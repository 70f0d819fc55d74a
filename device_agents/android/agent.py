"""Android agents: time ``.tflite`` models with TFLite's ``benchmark_model`` on a phone
(or the loopback device) over ADB, on the CPU (XNNPACK) or the GPU delegate."""
from __future__ import annotations

import logging
import math
import shlex
import tempfile
import uuid
from pathlib import Path
from typing import Any, ClassVar

from device_agents.android import energy, hygiene
from device_agents.android.benchmark_output import BenchmarkResult, check_gpu_applied, parse_benchmark_output
from device_agents.android.connection import AdbConnection, resolve_device
from device_agents.android.errors import BenchmarkOutputError, BenchmarkToolError
from device_agents.base import AgentError, DeviceAgent, ModelSession

log = logging.getLogger(__name__)
DATA_DIR = "/data/local/tmp"
DEVICE_BENCHMARK = f"{DATA_DIR}/benchmark_model"
FINGERPRINT_PROPS = {"device": "ro.product.model", "manufacturer": "ro.product.manufacturer",
                     "soc": "ro.soc.model", "board": "ro.board.platform", "abi": "ro.product.cpu.abi",
                     "android": "ro.build.version.release", "sdk": "ro.build.version.sdk"}


def parse_getprop(text: str) -> dict[str, str]:
    props = {}
    for line in text.splitlines():
        key, sep, value = line.partition("]: [")
        if sep and key.startswith("[") and value.endswith("]"):
            props[key[1:]] = value[:-1]
    return props


class AndroidSession(ModelSession):
    def __init__(self, agent: AndroidAgent, remote_path: str) -> None:
        self.agent, self.remote_path = agent, remote_path
        self.last: BenchmarkResult | None = None

    def command(self, runs: int, warmup_runs: int, min_secs: float = 0.0) -> str:
        agent = self.agent
        flags = [f"--graph={self.remote_path}", f"--num_threads={agent.threads}", f"--num_runs={runs}",
                 f"--warmup_runs={warmup_runs}", f"--min_secs={min_secs:g}", "--warmup_min_secs=0",
                 f"--max_secs={max(150.0, 3 * min_secs):g}", f"--use_gpu={str(agent.use_gpu).lower()}",
                 f"--use_xnnpack={str(not agent.use_gpu).lower()}"]
        prefix = ["taskset", agent.taskset_mask] if agent.taskset_mask else []
        return shlex.join([*prefix, agent.benchmark_path, *flags])

    def check_output(self, raw: str, rc: int) -> BenchmarkResult:
        if self.agent.use_gpu:
            check_gpu_applied(raw)
        if rc != 0:
            tail = " | ".join(raw.strip().splitlines()[-3:]) or "(no output)"
            raise BenchmarkToolError(f"benchmark_model failed on {self.agent.describe()} (exit {rc}): {tail}")
        try:
            return parse_benchmark_output(raw)
        except BenchmarkOutputError as exc:
            with tempfile.NamedTemporaryFile("w", prefix="benchmark_model-", suffix=".log", delete=False) as log_file:
                log_file.write(raw)
            raise BenchmarkOutputError(f"{exc} (raw output saved to {log_file.name})", raw) from None

    def time_round(self, runs: int, statistic: str = "median") -> float:
        raw, rc = self.agent.conn.shell(self.command(runs, self.agent.warmup_runs))
        self.last = self.check_output(raw, rc)
        return self.last.avg_ms if statistic == "median" else self.last.regular.min_us / 1000.0

    def close(self) -> None:
        self.agent.remove(self.remote_path)


class AndroidAgent(DeviceAgent):
    """A phone reached over ADB, timing models with ``benchmark_model``."""

    model_format = "tflite"
    use_gpu: ClassVar[bool] = False
    # each round is one benchmark_model process (which warms up itself): fixed runs, three
    # repeats, median of their means
    plan_overrides: ClassVar[dict] = {"fixed_runs": 30, "warmup_runs": 0, "min_rounds": 3, "max_rounds": 3,
                                      "estimator": "median"}

    def __init__(self, threads: int = 1, device: str | None = None, benchmark_binary: Path | None = None,
                 taskset: str | None = "auto", warmup_runs: int = 3, energy_secs: float = 10.0,
                 cool_margin_c: float = 3.0, max_cooldown_s: float = 300.0, retries: int = 5,
                 key_path: Path | None = None, auth_timeout_s: float = 10.0) -> None:
        super().__init__(threads)
        self.warmup_runs, self.energy_secs = warmup_runs, energy_secs
        self.conn = AdbConnection(resolve_device(device), key_path=key_path, retries=retries,
                                  auth_timeout_s=auth_timeout_s)
        self.conn.call("connect", lambda device: None)
        self.props = parse_getprop(self.conn.shell("getprop")[0])
        self.workdir = f"{DATA_DIR}/hwadapt-{uuid.uuid4().hex[:8]}"
        self.run_ok(f"mkdir -p {shlex.quote(self.workdir)}")
        self.pushed = 0
        try:
            self.benchmark_path = self.install_benchmark(benchmark_binary)
        except BaseException:
            self.close()  # leave nothing behind on the phone
            raise
        self.cooldown = hygiene.CoolDown(self.read_state, margin_c=cool_margin_c, max_wait_s=max_cooldown_s)
        self.cpus, auto_mask = hygiene.fastest_cores_mask(self.read_state(), threads)
        self.taskset_mask = auto_mask if taskset == "auto" else taskset

    def describe(self) -> str:
        return f"{self.props.get('ro.product.model', 'device')} ({self.conn.spec})"

    def run_ok(self, command: str) -> str:
        output, rc = self.conn.shell(command)
        if rc != 0:
            raise BenchmarkToolError(f"`{command}` failed on {self.describe()} (exit {rc}): {output.strip()[-200:]}")
        return output

    def install_benchmark(self, binary: Path | None) -> str:
        if binary is None:
            target = DEVICE_BENCHMARK
            missing = (f"no benchmark_model at {DEVICE_BENCHMARK} on {self.describe()}; pass --benchmark-binary "
                       "PATH (TFLite's android_aarch64_benchmark_model)")
        else:
            binary = Path(binary)
            if not binary.is_file():
                raise BenchmarkToolError(f"benchmark binary {binary} not found")
            target = f"{self.workdir}/benchmark_model"
            self.conn.push(binary, target, mode=0o755)
            missing = f"pushing {binary} to {target} failed"
        quoted = shlex.quote(target)
        state = self.conn.shell(f"if [ ! -f {quoted} ]; then echo missing; elif [ ! -x {quoted} ]; "
                                f"then echo not-executable; else echo ok; fi")[0].strip()
        if state == "missing":
            raise BenchmarkToolError(missing)
        if state == "not-executable":
            raise BenchmarkToolError(f"{target} on {self.describe()} is not executable (adb shell chmod +x {target})")
        return target

    def benchmark_identity(self) -> str:
        output, rc = self.conn.shell(f"sha256sum {shlex.quote(self.benchmark_path)}")
        digest = output.split()[0] if rc == 0 and output.split() else "unknown"
        return digest[:16]

    def fingerprint(self) -> dict[str, Any]:
        info = {key: self.props.get(prop, "") for key, prop in FINGERPRINT_PROPS.items()}
        return {**info, "backend": self.backend, "runtime": "tflite benchmark_model",
                "runtime_version": f"sha256:{self.benchmark_identity()}", "threads": self.threads,
                "delegate": "gpu" if self.use_gpu else "xnnpack", "taskset": self.taskset_mask or "none"}

    def open(self, model_path: Path) -> ModelSession:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise BenchmarkToolError(f"model file {model_path} not found")
        self.pushed += 1
        remote = f"{self.workdir}/{self.pushed}_{model_path.name}"
        self.conn.push(model_path, remote)
        return AndroidSession(self, remote)

    def remove(self, remote_path: str) -> None:
        self.conn.shell(f"rm -f {shlex.quote(remote_path)}")

    def read_state(self) -> hygiene.DeviceState:
        return hygiene.parse_state(self.conn.shell(hygiene.STATE_SCRIPT)[0])

    def conditions(self) -> dict[str, Any]:
        state, waited = self.cooldown.settle()
        pinned = self.cpus or sorted(state.cpus)
        freqs = [state.cpus[c].cur_khz for c in pinned if c in state.cpus]
        return {"temperature_c": state.temperature_c, "cpu_freq_khz": max(freqs) if freqs else None,
                "throttled": state.throttled(pinned), "cooldown_s": round(waited, 1)}

    def energy_mj(self, session: ModelSession) -> float | None:
        assert isinstance(session, AndroidSession)
        if self.energy_secs <= 0:
            return None
        reason = energy.charging_reason(self.conn.shell(energy.CHARGE_SCRIPT)[0])
        if reason:
            log.warning("energy left empty on %s: %s, and USB power distorts the battery reading "
                        "(unplug: `adb tcpip 5555` and connect with --device tcp:PHONE_IP:5555)", self.describe(), reason)
            return None
        command = session.command(runs=1, warmup_runs=1, min_secs=self.energy_secs)
        idle_samples = max(4, math.ceil(self.energy_secs / 2 / 0.25))
        output, _ = self.conn.shell(energy.sampling_script(command, idle_samples))
        samples, bench = energy.parse_samples(output)
        rc_text, _, raw = bench.partition("\n")
        result = session.check_output(raw, int(rc_text.strip() or 1))
        return energy.energy_per_inference_mj(samples, result.avg_ms)

    def close(self) -> None:
        try:
            self.conn.shell(f"rm -rf {shlex.quote(self.workdir)}")
        except AgentError as exc:
            log.warning("could not remove %s from the device: %s", self.workdir, exc)
        self.conn.close()


class AndroidCpuAgent(AndroidAgent):
    """TFLite ``benchmark_model`` on the phone's CPU with XNNPACK, pinned to the big cores."""

    backend = "android-cpu"


class AndroidGpuAgent(AndroidAgent):
    """TFLite ``benchmark_model`` with the GPU delegate; fails rather than fall back to the CPU."""

    backend = "android-gpu"
    use_gpu = True
