"""Spoiled grid points, found by comparison with wider ops (re-measurement: test_lut)."""
import json

from hwadapt.lut.outliers import merge_windows, suspect_rows, window_levels
from hwadapt.measure import median_level


def conv_rows(ms_of):
    return [{"kind": "conv", "size": 8, "kernel": 1, "stride": 1, "act": "relu", "cin": cin, "cout": cout,
             "arch": "", "ms": ms_of(cin, cout)} for cin in (8, 16, 24) for cout in (8, 16, 24, 32)]


def linear_ms(cin, cout):
    return cin * cout / 1000


def test_a_point_costing_far_more_than_a_wider_op_is_suspect():
    rows = conv_rows(lambda cin, cout: linear_ms(cin, cout) * (2.5 if (cin, cout) == (16, 16) else 1))
    assert [(r["cin"], r["cout"]) for r in suspect_rows(rows)] == [(16, 16)]


def test_tile_steps_and_the_widest_op_are_not_suspect():
    # a 16-wide tile: 8 channels cost what 16 do, 24 what 32 do (1.3x a wider op at most)
    tiled = conv_rows(lambda cin, cout: linear_ms(cin, -(-cout // 16) * 16) * (1.3 if cout == 24 else 1))
    assert suspect_rows(tiled) == []
    widest = conv_rows(lambda cin, cout: linear_ms(cin, cout) * (3 if (cin, cout) == (24, 32) else 1))
    assert suspect_rows(widest) == []  # nothing is wider to compare it with


def test_only_faster_remeasurements_replace_rows():
    rows = conv_rows(linear_ms)
    slower = {**rows[0], "ms": rows[0]["ms"] * 2}
    faster = {**rows[1], "ms": rows[1]["ms"] / 2}
    assert merge_windows(rows, [[slower, faster]]) == 1
    assert rows[0]["ms"] == linear_ms(8, 8) and rows[1]["ms"] == faster["ms"]
    assert [r.get("windows") for r in rows[:3]] == [2, 2, None]  # both re-measured rows count two windows


def test_the_median_window_ignores_a_fast_and_a_slow_one():
    rows = conv_rows(linear_ms)
    rows[0]["ms"] /= 2  # its first window read fast
    first = [{**rows[0], "ms": linear_ms(8, 8)}, {**rows[1], "ms": rows[1]["ms"] * 1.01}]
    second = [{**rows[0], "ms": linear_ms(8, 8) * 1.3}, {**rows[1], "ms": rows[1]["ms"] * 3}]
    assert merge_windows(rows, [first, second], median_level) == 2
    assert rows[0]["ms"] == linear_ms(8, 8) and rows[1]["ms"] == linear_ms(8, 16) * 1.01
    assert rows[0]["windows"] == rows[1]["windows"] == 3


def test_the_median_counts_every_window_of_a_row():
    row = {**conv_rows(linear_ms)[0], "ms": 1.2, "windows": 3, "window_ms": json.dumps([1.2, 1.2, 1.3])}
    rows = [row]
    assert merge_windows(rows, [[{**row, "ms": 1.0, "window_ms": None, "windows": 1}],
                                [{**row, "ms": 1.1, "window_ms": None, "windows": 1}]], median_level) == 0
    assert rows[0]["ms"] == 1.2 and window_levels(rows[0]) == [1.2, 1.2, 1.3, 1.0, 1.1]  # not 1.1 of the three rows
