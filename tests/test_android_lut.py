"""A LUT built through the loopback device while its connection drops 20 times at random
points: the agent reconnects, and the table ends with every row exactly once."""
from __future__ import annotations

import pytest
from adb_shell.auth.keygen import keygen

from device_agents import make_agent
from device_agents.android.errors import DeviceDisconnected
from device_agents.loopback import DisconnectPlan, LoopbackDevice
from hwadapt.families import FAMILIES, family
from hwadapt.arch import Arch, Block
from hwadapt.lut.profile import build_lut, plan_jobs
from hwadapt.lut.store import load_lut, row_key
from hwadapt.measure import MeasurePlan

FAMILY, RESOLUTION = "loopback_lut_tiny", 16


if FAMILY not in FAMILIES:
    @family(FAMILY)
    def _tiny(*, width: float = 1.0, resolution: int = RESOLUTION, num_classes: int = 10) -> Arch:
        """Two blocks of at most 16 channels: 13 LUT rows (12 ops and the base network)."""
        blocks = (Block("conv", 16, kernel=3, stride=2), Block("dwsep", 16, kernel=3, stride=1))
        return Arch(FAMILY, resolution, num_classes, blocks, act="relu", meta={"width": width})


def test_twenty_disconnects_lose_and_duplicate_no_row(tmp_path):
    key = tmp_path / "adbkey"
    keygen(str(key))
    drops = DisconnectPlan(count=20, min_packets=15, max_packets=60, seed=7)  # a run is ~25 packets
    plan = MeasurePlan(warmup_runs=0, fixed_runs=5, min_rounds=2, max_rounds=2, rel_tol=1.0, time_cap_s=5)
    out = tmp_path / "lut.parquet"
    reconnects = reruns = 0
    with LoopbackDevice(port=0, disconnects=drops) as device:
        while True:  # what a user does when retries run out: run the command again (it resumes)
            with make_agent("android-cpu", device=f"tcp:{device.serial}", key_path=key, energy_secs=0,
                            warmup_runs=1) as agent:
                try:
                    build_lut(agent, FAMILY, RESOLUTION, out, num_classes=10, calibration_models=1, plan=plan)
                    break
                except DeviceDisconnected:
                    reruns += 1
                    assert reruns <= drops.count
                finally:
                    reconnects += agent.conn.reconnects
    assert drops.done == 20 and reconnects + reruns >= 20
    _, frame = load_lut(out)
    keys = [row_key(row) for row in frame.to_dict("records")]
    meta, _ = load_lut(out)
    expected = {job.key for job in plan_jobs(meta)}
    assert len(keys) == len(set(keys)) == len(expected)  # 0 duplicated
    assert set(keys) == expected  # 0 lost
    # every row has a figure (benchmark_model counts whole microseconds: an op faster
    # than 1 us on this host reads 0)
    assert frame["ms"].notna().all() and (frame["ms"] >= 0).all() and (frame["ms"] > 0).mean() > 0.5
    assert not list(device.sandbox.glob("hwadapt-*"))  # the agent cleaned up after itself


@pytest.mark.parametrize("backend", ["android-cpu"])
def test_lut_fingerprint_names_the_phone(tmp_path, backend):
    key = tmp_path / "adbkey"
    keygen(str(key))
    with LoopbackDevice(port=0) as device, make_agent(backend, device=f"tcp:{device.serial}",
                                                      key_path=key) as agent:
        fingerprint = agent.fingerprint()
    for field in ("device", "soc", "abi", "android", "threads", "delegate", "taskset", "runtime_version"):
        assert fingerprint[field] not in ("", None), field
