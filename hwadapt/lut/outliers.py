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


def windows(row: dict[str, Any]) -> int:
    """How many measurement windows a row's figure is the fastest of (1 in tables written
    before rows counted them)."""
    value = row.get("windows")
    return 1 if value is None or pd.isna(value) else int(value)


def keep_faster(rows: list[dict[str, Any]], remeasured: list[dict[str, Any]]) -> int:
    """Replace rows by their re-measurement where it is faster (a busy host only ever adds
    time), counting the windows either way; returns how many were replaced."""
    by_key = {row_key(r): r for r in remeasured}
    replaced = 0
    for i, row in enumerate(rows):
        new = by_key.get(row_key(row))
        if new is None:
            continue
        total = windows(row) + windows(new)
        if new["ms"] < row["ms"]:
            row = new
            replaced += 1
        rows[i] = {**row, "windows": total}
    return replaced
