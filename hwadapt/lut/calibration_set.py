"""Which whole networks a table measures to calibrate its predictor, and how much each
counts in the fit (docs/measurement.md gives the figures behind each choice)."""
from __future__ import annotations

from typing import Any

import numpy as np

from hwadapt.arch.groups import random_widths
from hwadapt.arch.spec import Arch
from hwadapt.families import build, get_family
from hwadapt.lut.store import LutError, LutMeta

CALIBRATION_STREAM = 0  # validation samples use another stream of the same seed
SHRUNK_WEIGHT = 0.5  # of a shrunk calibration network in the fit (a member's: 1)
CALIBRATION_MODELS = 60  # whole networks a table below LARGE_INPUT_PX measures: the base, 40 members, 19 shrunk
LARGE_INPUT_PX = 128  # from this input side on, tables measure LARGE_INPUT_MODELS
LARGE_INPUT_MODELS = 40  # the base, 26 members, 13 shrunk
SCHEME = "balanced"


def default_calibration_models(resolution: int) -> int:
    """How many whole networks a new table measures to calibrate: ``CALIBRATION_MODELS``
    for small inputs, ``LARGE_INPUT_MODELS`` from ``LARGE_INPUT_PX`` on.

    Why fewer for large inputs: a 224 px network's window runs to 20-24 rounds (its rounds
    hold 3-5 inferences), and with 60 networks a 224 px table pair took 11-13 minutes on
    a 2-core host, where 40 priced its validation networks as well."""
    return LARGE_INPUT_MODELS if resolution >= LARGE_INPUT_PX else CALIBRATION_MODELS


def default_shrunk(count: int) -> int:
    """How many of ``count`` calibration networks a new table shrinks: a third of those
    drawn (the rest, and the base network, are members of the space).

    Why not half: refitted on their own networks measured again beside the validation
    networks, tables with half their networks shrunk priced held-out members 1-2% low;
    with more members, at most 1.2% low."""
    return (count - 1) // 3


def calibration_set(family: str, resolution: int, num_classes: int, count: int, seed: int,
                    shrunk: int | None = None) -> list[tuple[Arch, str]]:
    """The ``count`` calibration networks, each with its role: ``"base"`` (the base
    network), ``"member"`` (members of the family's space, drawn together so that they
    cover it evenly: :meth:`~hwadapt.families.Space.sample_many`) and ``"shrunk"``
    (``shrunk`` more members, None: :func:`default_shrunk`, with any width cut down to 8
    channels, so that the fit holds where NetAdapt goes)."""
    shrunk = default_shrunk(count) if shrunk is None else shrunk
    space, rng = get_family(family).space, np.random.default_rng([seed, CALIBRATION_STREAM])
    members = space.sample_many(resolution, num_classes, count - 1 - shrunk, rng)
    to_shrink = space.sample_many(resolution, num_classes, shrunk, rng)
    base = build(family, resolution=resolution, num_classes=num_classes)
    return [(base, "base"), *[(arch, "member") for arch in members],
            *[(random_widths(arch, rng, low=0.0), "shrunk") for arch in to_shrink]]


def new_draw(count: int, seed: int) -> dict[str, Any]:
    """The sidecar's record of how a new table draws its calibration set."""
    return {"scheme": SCHEME, "count": count, "seed": seed, "shrunk": default_shrunk(count)}


def table_draw(meta: LutMeta) -> dict[str, Any]:
    """How a table's calibration set was drawn, from its sidecar; an error for a draw this
    hwadapt does not make (a table begun by an older one cannot be resumed, only used)."""
    draw = meta.calibration_draw
    if draw.get("scheme") != SCHEME or "shrunk" not in draw or draw.get("narrow"):
        raise LutError(f"the table was begun with a calibration draw this hwadapt does not make ({draw or 'none'}); "
                       "it can be used as it is, but not resumed: choose another --out")
    return draw


def calibration_roles(archs: list[str], meta: LutMeta) -> np.ndarray:
    """The role (:func:`calibration_set`) of each of a table's calibration networks (JSON,
    in table order); ``"member"`` for any the draw does not name."""
    draw = table_draw(meta)
    roles = {arch.to_json(indent=None): role for arch, role in calibration_set(
        meta.family, meta.resolution, meta.num_classes, draw["count"], draw["seed"], draw["shrunk"])
        if role != "member"}
    return np.array([roles.get(a, "member") for a in archs], dtype=object)


def calibration_weights(rows: list[dict[str, Any]], meta: LutMeta) -> np.ndarray:
    """The fit's weight of each calibration network (model rows, in table order): the
    shrunk ones count ``SHRUNK_WEIGHT``.

    Why less than the members: the validation networks, and most networks a search
    prices, are members; at half weight the fit priced validation members within 5% for
    85.6-91.2% of them on twelve stored tables where all alike priced 84.4-87.5%."""
    roles = calibration_roles([r["arch"] for r in rows if r["kind"] == "model"], meta)
    return np.where(roles == "shrunk", SHRUNK_WEIGHT, 1.0)
