from collections import Counter

import numpy as np
import pytest

from hwadapt.arch import Arch, ArchError, Block, lower, random_widths, set_widths, width_groups
from hwadapt.families import build
from hwadapt.families import get_family
from hwadapt.arch.groups import balanced_widths, width_choices
from hwadapt.families.proxyless import ProxylessSpace


@pytest.mark.parametrize("family", ["mobilenet_v1", "mobilenet_v2"])
@pytest.mark.parametrize("resolution", [32, 224])
def test_json_round_trip_keeps_every_field(family, resolution):
    arch = random_widths(build(family, resolution=resolution, num_classes=10), np.random.default_rng(0))
    again = Arch.from_json(arch.to_json())
    assert again == arch
    assert lower(again) == lower(arch)


def test_mobilenet_shapes_match_the_papers():
    v1 = build("mobilenet_v1", resolution=224, num_classes=1000)
    ops = lower(v1)
    assert [o.kind for o in ops].count("dwconv") == 13
    assert ops[-2].size == 7 and ops[-1].cin == 1024
    v2 = build("mobilenet_v2", resolution=224, num_classes=1000)
    assert sum(1 for o in lower(v2) if o.kind == "add") == 10
    assert v2.blocks[-1].out == 1280
    half = build("mobilenet_v1", width=0.5, resolution=32, num_classes=10)
    assert [b.out for b in half.blocks][:3] == [16, 32, 64]


def test_residual_groups_stay_tied_when_widths_change():
    v2 = build("mobilenet_v2", resolution=32, num_classes=10)
    adds_before = sum(1 for o in lower(v2) if o.kind == "add")
    narrowed = set_widths(v2, {g.name: 8 for g in width_groups(v2)})
    assert sum(1 for o in lower(narrowed) if o.kind == "add") == adds_before
    sample = random_widths(v2, np.random.default_rng(3))
    assert sum(1 for o in lower(sample) if o.kind == "add") == adds_before
    assert all(b.out % 8 == 0 and b.mid % 8 == 0 for b in sample.blocks)


@pytest.mark.parametrize("bad", [
    {"blocks": [{"kind": "warp", "out": 8}]},
    {"blocks": [{"kind": "conv", "out": 8, "stride": 3}]},
    {"blocks": [{"kind": "skip", "out": 16}]},
    {"blocks": [{"kind": "conv", "out": 8, "kernel": 2}]},
    {"blocks": [{"kind": "conv"}]},
])
def test_malformed_descriptions_are_refused(bad):
    with pytest.raises(ArchError):
        Arch.from_dict({"family": "x", "resolution": 32, "num_classes": 10, **bad})


def test_unknown_family_and_group_names_are_errors():
    with pytest.raises(ArchError, match="unknown family"):
        build("resnet9000")
    with pytest.raises(ArchError, match="no channel group"):
        set_widths(build("mobilenet_v1", resolution=32), {"nope": 8})


def test_skip_block_lowers_to_nothing():
    arch = Arch("x", 16, 10, (Block("conv", 16, 3, 2), Block("skip", 16)), act="relu")
    assert [o.kind for o in lower(arch)] == ["conv", "pool", "fc"]


def test_balanced_widths_cover_every_groups_range_evenly():
    """One network per stratum of every group's range, where independent draws bunch up."""
    base = build("mobilenet_v1", resolution=32, num_classes=10)
    count = 19
    nets = balanced_widths(base, count, np.random.default_rng(0))
    for group in width_groups(base):
        choices = width_choices(group, base)
        assert set(group.width(n) for n in nets) <= set(choices.tolist())
        picked = sorted(np.searchsorted(choices, [group.width(n) for n in nets]))  # the k-th from the k-th stratum
        assert all(k * len(choices) // count <= i <= (k + 1) * len(choices) // count for k, i in enumerate(picked))
    assert len({n.to_json() for n in nets}) == count


def test_balanced_members_spread_every_positions_choices():
    space = ProxylessSpace(32, 10)
    members = get_family("proxyless").space.sample_many(32, 10, 24, np.random.default_rng(0))
    for k, position in enumerate(space.positions()):
        counts = Counter(m.meta["choices"][k] for m in members)
        assert set(counts) <= set(position.choices())
        assert max(counts.values()) - min(counts.values()) <= 1 and len(counts) == len(position.choices())
