"""Shared fixtures: a tiny registered family so LUT tests run in seconds."""
from __future__ import annotations

import pytest

from hwadapt.arch.families import FAMILIES, register
from hwadapt.arch.spec import Arch, Block

SHARED_DATA = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "data"


@register("tiny")
def tiny(*, width: float = 1.0, resolution: int = 16, num_classes: int = 10) -> Arch:
    """Three blocks: enough to exercise every op kind the LUT prices except add."""
    w = lambda c: max(8, int(c * width) // 8 * 8)  # noqa: E731
    blocks = (Block("conv", w(16), 3, 2), Block("dwsep", w(24), 3, 2), Block("mbconv", w(24), 3, 1, mid=w(48)))
    return Arch("tiny", resolution, num_classes, blocks, act="relu6")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Single-threaded torch: on a loaded 2-core host, two spinning threads per op are slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_family() -> str:
    assert "tiny" in FAMILIES
    return "tiny"
