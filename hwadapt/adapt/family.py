"""The end of a NetAdapt run: measure every kept network on the LUT's target, export the
result to ONNX and TFLite, and write family.csv, pareto.png and report.json."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from device_agents import make_agent
from hwadapt.adapt.plot import pareto_png
from hwadapt.adapt.rundir import RunDir, write_json
from hwadapt.arch import Arch
from hwadapt.materialize import export
from hwadapt.materialize.torch_net import load_checkpoint
from hwadapt.measure import MeasurePlan, default_probe, measure_in_windows, median_window

DEFAULT_BACKEND = "ort-cpu"
FAMILY_COLUMNS = ["iteration", "stage", "group", "predicted_ms", "measured_ms", "holdout_accuracy",
                  "test_accuracy", "seconds", "arch"]


def family_frame(state: dict) -> pd.DataFrame:
    rows = [*state["rows"], *([state["final"]] if state.get("final") else [])]
    frame = pd.DataFrame(rows).reindex(columns=FAMILY_COLUMNS)
    frame["arch"] = [json.dumps(a, separators=(",", ":")) for a in frame["arch"]]
    return frame


def measure_rows(rows: list[dict], folders: list[Path], predictor=None, plan: MeasurePlan | None = None) -> None:
    """Fill ``measured_ms`` of each row: its network, with trained weights, measured end to
    end (interleaved batches, the median of its windows) on the LUT's agent and time base
    (its probe); without a LUT, on ONNX Runtime (1 thread) against the default probe."""
    nets = [load_checkpoint(folder)[0] for folder in folders]
    if predictor is not None:
        agent, probe = predictor.make_agent(), predictor.probe()
        predictor.check_target(agent)
    else:
        agent, probe = make_agent(DEFAULT_BACKEND, threads=1), default_probe(nets[0].arch.resolution)
    with agent:
        results = [median_window(w) for w in measure_in_windows(agent, [n.arch for n in nets], nets, plan, probe)]
    for row, result in zip(rows, results):
        row["measured_ms"] = result.median_ms
        row["measured_p10_ms"], row["measured_p90_ms"] = result.p10_ms, result.p90_ms


def finish(state: dict, run: RunDir, predictor, plan: MeasurePlan | None = None,
           baseline: pd.DataFrame | None = None) -> dict:
    """Measure, export and report (once; a resumed finished run just rereads the report)."""
    if state["phase"] != "done":
        rows = [*state["rows"], state["final"]]
        folders = [run.member(r["iteration"]) for r in state["rows"]] + [run.final]
        measure_rows(rows, folders, predictor, plan)
        net, _ = load_checkpoint(run.final)
        for fmt in ("onnx", "tflite"):
            export(net.arch, fmt, run.final / f"model.{fmt}", net=net)
        state["phase"] = "done"
        run.save(state)
    frame = family_frame(state)
    frame.to_csv(run.root / "family.csv", index=False)
    budget = state["config"]["budget_ms"]
    pareto_png(run.root / "pareto.png", frame, baseline, budget,
               title=f"{state['rows'][0]['arch']['family']}: NetAdapt to {budget:.3g} ms")
    report = make_report(state, run)
    write_json(run.root / "report.json", report)
    return report


def make_report(state: dict, run: RunDir) -> dict:
    base, final = state["rows"][0], state["final"]
    stop = state["stop"] or {}
    return {
        "budget_ms": state["config"]["budget_ms"],
        "predicted_ms": final["predicted_ms"],
        "measured_ms": final["measured_ms"],
        "base_predicted_ms": base["predicted_ms"],
        "base_measured_ms": base["measured_ms"],
        "measured_speedup": base["measured_ms"] / final["measured_ms"],
        "prediction_error": final["measured_ms"] / final["predicted_ms"] - 1.0,
        "within_budget_measured": final["measured_ms"] <= state["config"]["budget_ms"],
        "test_accuracy": final["test_accuracy"],
        "base_test_accuracy": base["test_accuracy"],
        "holdout_accuracy": final["holdout_accuracy"],
        "base_holdout_accuracy": base["holdout_accuracy"],
        "iterations": len(state["rows"]) - 1,
        "stop_reason": stop.get("reason"),
        "stop_message": stop.get("message"),
        "arch": Arch.from_dict(final["arch"]).to_dict(),
        "onnx": str(run.final / "model.onnx"),
        "tflite": str(run.final / "model.tflite"),
    }
