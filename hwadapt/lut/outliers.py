"""Grid points that a transient slowdown of the host spoiled.

An op with no more channels than another of its shape class should not cost much more
than it. Genuine exceptions exist, from how channels fill a kernel's tile (ORT's 8x8
depthwise conv: 7.5 us at 40 channels, 5.7 us at 48; 1.3x), but a point measured while
another process held the memory bus can cost twice its neighbours: LiteRT's 1x1 conv on
a 112x112 map, 16 -> 64 channels, read 0.57 ms in a table where 16 -> 72 cost 0.27 and
the same op measured alone again cost 0.25 ms. Such a point misprices every network
that uses it, so the profile re-measures it.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd

from hwadapt.lut.lookup import SHAPE_COLUMNS
from hwadapt.lut.store import row_key

TOLERANCE = 1.5  # above the largest genuine step seen (1.3x), below a spoiled point (2x)


def suspect_rows(rows: list[dict[str, Any]], tolerance: float = TOLERANCE) -> list[dict[str, Any]]:
    """Op rows that cost more than ``tolerance`` x some op of their shape class with at
    least as many input and output channels."""
    frame = pd.DataFrame(rows)
    frame = frame[frame["kind"] != "model"]
    suspects = []
    for _, group in frame.groupby(SHAPE_COLUMNS):
        cin, cout, ms = (group[c].to_numpy() for c in ("cin", "cout", "ms"))
        for j in range(len(group)):
            wider = (cin >= cin[j]) & (cout >= cout[j]) & ((cin > cin[j]) | (cout > cout[j]))
            if wider.any() and ms[j] > tolerance * ms[wider].min():
                suspects.append(group.iloc[j].to_dict())
    return suspects


Row = dict[str, Any]


def windows(row: Row) -> int:
    """How many measurement windows a row's figure was chosen from (1 in tables written
    before rows counted them)."""
    value = row.get("windows")
    return 1 if value is None or pd.isna(value) else int(value)


def window_levels(row: Row) -> list[float]:
    """The figure of each window a row was measured in (tables written before rows kept
    them: its figure, once per window)."""
    value = row.get("window_ms")
    return json.loads(value) if isinstance(value, str) else [float(row["ms"])] * windows(row)


def fastest(levels: list[float]) -> float:
    """A single op's window: a busy host only ever adds time."""
    return min(levels)


def merge_windows(rows: list[Row], passes: list[list[Row]], choose: Callable[[list[float]], float] = fastest) -> int:
    """Merge re-measurements (one list of rows per extra window) into ``rows``: each row
    re-measured in every pass takes the figure ``choose`` picks from all its windows (and
    the other fields of the window nearest it); returns how many rows changed figure."""
    by_key = [{row_key(r): r for r in measured} for measured in passes]
    changed = 0
    for i, row in enumerate(rows):
        new = [p[row_key(row)] for p in by_key if row_key(row) in p]
        if len(new) != len(passes) or not new:
            continue
        levels = [level for r in (row, *new) for level in window_levels(r)]
        figure = choose(levels)
        nearest = min((row, *new), key=lambda r: abs(r["ms"] - figure))
        changed += figure != row["ms"]
        rows[i] = {**nearest, "ms": figure, "windows": len(levels), "window_ms": json.dumps(levels)}
    return changed
