"""Latency lookup tables: what a family can reach (``space``), measuring it (``profile``),
parquet + sidecar storage (``store``), lookup between grid points (``lookup``), the
calibration on whole networks (``calibrate``), the predictor and its validation."""
