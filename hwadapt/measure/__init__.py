"""Measuring models on a device agent: the protocol of one window (``protocol``), end-to-end
figures over several windows (``windows``) and a table's target (``target``)."""
from hwadapt.measure.protocol import MeasurePlan, Measurement, default_plan, measure_paths, measure_sessions
from hwadapt.measure.target import TARGET_FIELDS, Target, TargetMismatchError, target_fingerprint
from hwadapt.measure.windows import (BATCH_SIZE, GATE_PCT, MAX_WINDOWS, MIN_KEPT, NOISY_PCT, PATIENCE_S, WINDOWS,
                                     EndToEnd, ModelWriter, Probe, arch_writer, default_probe, graph_writer,
                                     kept_windows, measure_arch, measure_archs, measure_in_windows, measure_models,
                                     measure_models_in_windows, median_level, median_window, noisy_note, settled,
                                     spread_pct, window_spread_pct, windows_of)

__all__ = ["BATCH_SIZE", "GATE_PCT", "MAX_WINDOWS", "MIN_KEPT", "NOISY_PCT", "PATIENCE_S", "TARGET_FIELDS", "WINDOWS",
           "EndToEnd", "MeasurePlan", "Measurement", "ModelWriter", "Probe", "Target", "TargetMismatchError",
           "arch_writer", "default_plan", "default_probe", "graph_writer", "kept_windows", "measure_arch",
           "measure_archs", "measure_in_windows", "measure_models", "measure_models_in_windows", "measure_paths",
           "measure_sessions", "median_level", "median_window", "noisy_note", "settled", "spread_pct",
           "target_fingerprint", "window_spread_pct", "windows_of"]
