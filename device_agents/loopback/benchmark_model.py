"""Host-side stand-in for TFLite's ``benchmark_model``: runs the real ``.tflite`` with the
LiteRT interpreter (XNNPACK unless ``--use_xnnpack=false``) and prints the stock tool's
output format. The loopback device has no GPU: ``--use_gpu=true`` fails as the stock
tool does when the GPU delegate cannot be applied (no silent CPU fallback).
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time

import numpy as np

_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no"}


def _flag_bool(text: str) -> bool:
    if text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    raise argparse.ArgumentTypeError(f"not a bool: {text}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmark_model", allow_abbrev=False, add_help=False)
    parser.add_argument("--graph", default="")
    parser.add_argument("--num_threads", type=int, default=-1)
    parser.add_argument("--num_runs", type=int, default=50)
    parser.add_argument("--min_secs", type=float, default=1.0)
    parser.add_argument("--max_secs", type=float, default=150.0)
    parser.add_argument("--warmup_runs", type=int, default=1)
    parser.add_argument("--warmup_min_secs", type=float, default=0.5)
    parser.add_argument("--use_gpu", type=_flag_bool, default=False)
    parser.add_argument("--use_xnnpack", type=_flag_bool, default=True)
    return parser


def format_stat(samples_us: list[int]) -> str:
    """``Stat::OutputToStream``: all-same form, or count/first/curr/min/max/avg/std."""
    if not samples_us:
        return "count=0"
    count, low, high = len(samples_us), min(samples_us), max(samples_us)
    if low == high:
        return f"count={count} curr={samples_us[-1]}" + ("(all same)" if count > 1 else "")
    mean = sum(samples_us) / count
    std = int(math.sqrt(max(0.0, sum(s * s for s in samples_us) / count - mean * mean)))
    return (f"count={count} first={samples_us[0]} curr={samples_us[-1]} min={low} max={high} "
            f"avg={mean:.6g} std={std}")


def _info(message: str) -> None:
    print(f"INFO: {message}", flush=True)


def _error(message: str) -> None:
    print(f"ERROR: {message}", file=sys.stderr, flush=True)


def _now_us() -> int:
    """Whole microseconds, as the stock tool's ``NowMicros()``: differences are unbiased."""
    return time.perf_counter_ns() // 1000


def _timed_runs(invoke, min_runs: int, min_secs: float, max_secs: float) -> list[int]:
    _info(f"Running benchmark for at least {min_runs} iterations and at least {min_secs:g} seconds "
          f"but terminate if exceeding {max_secs:g} seconds.")
    samples: list[int] = []
    start = time.perf_counter()
    while (len(samples) < min_runs or time.perf_counter() - start < min_secs) \
            and time.perf_counter() - start <= max_secs:
        begin = _now_us()
        invoke()
        samples.append(_now_us() - begin)
    _info(format_stat(samples) + "\n")
    return samples


def _load(args: argparse.Namespace):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if args.use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    threads = None if args.num_threads < 0 else args.num_threads
    interpreter = Interpreter(model_path=args.graph, num_threads=threads, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for spec in interpreter.get_input_details():
        interpreter.set_tensor(spec["index"], rng.uniform(-1, 1, spec["shape"]).astype(spec["dtype"]))
    return interpreter


def _log_parameters(args: argparse.Namespace) -> None:
    _info("STARTING!")
    _info("Log parameter values verbosely: [0]")
    _info(f"Min num runs: [{args.num_runs}]")
    _info(f"Min runs duration (seconds): [{args.min_secs:g}]")
    _info(f"Num threads: [{args.num_threads}]")
    _info(f"Min warmup runs: [{args.warmup_runs}]")
    _info(f"Min warmup runs duration (seconds): [{args.warmup_min_secs:g}]")
    _info(f"Graph: [{args.graph}]")
    if args.use_gpu:
        _info("Use gpu: [1]")
    _info(f"Use xnnpack: [{int(args.use_xnnpack)}]")


def _fail_gpu() -> int:
    _error("Can not open OpenCL library on this device - no OpenCL driver on the loopback device")
    _error("Falling back to OpenGL")
    _error("TfLiteGpuDelegate Init: OpenGL-based API disabled")
    _error("TfLiteGpuDelegate Prepare: delegate is not initialized")
    _error("Node number 0 (TfLiteGpuDelegateV2) failed to prepare.")
    _error("Restored original execution plan after delegate application failure.")
    _error("Failed to apply GPU delegate.")
    _error("Benchmarking failed.")
    return 1


def main(argv: list[str] | None = None) -> int:
    args, unknown = _parser().parse_known_args(argv)
    _log_parameters(args)
    if unknown:
        print(f"WARN: Unconsumed cmdline flags: {' '.join(unknown)}", flush=True)
    if not os.path.isfile(args.graph):
        _error(f"File {args.graph} does not exist.")  # stock: model loading fails
        _error("Benchmarking failed.")
        return 1
    _info(f"Loaded model {args.graph}")
    if args.use_gpu:
        return _fail_gpu()
    init_start = time.perf_counter()
    interpreter = _load(args)
    init_us = int((time.perf_counter() - init_start) * 1e6)
    _info(f"The input model file size (MB): {os.path.getsize(args.graph) / 1e6:g}")
    _info(f"Initialized session in {init_us / 1000:g}ms.")
    warmup = _timed_runs(interpreter.invoke, args.warmup_runs, args.warmup_min_secs, args.max_secs)
    regular = _timed_runs(interpreter.invoke, args.num_runs, args.min_secs, args.max_secs)
    warm_avg = sum(warmup) / max(1, len(warmup))
    run_avg = sum(regular) / len(regular) if regular else float("nan")
    _info(f"Inference timings in us: Init: {init_us}, First inference: {warmup[0] if warmup else 0}, "
          f"Warmup (avg): {warm_avg:.6g}, Inference (avg): {run_avg:.6g}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _info(f"Memory footprint delta from the start of the tool (MB): init={peak_mb:g} overall={peak_mb:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
