import numpy as np
import pytest

from hwadapt.arch import Arch, ArchError, Block, build, lower, random_widths, set_widths, width_groups


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
