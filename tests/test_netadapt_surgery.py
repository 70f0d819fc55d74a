"""Weight surgery and channel groups, checked against torch-pruning's dependency graph."""
import copy

import numpy as np
import pytest
import torch
import torch_pruning as tp

from hwadapt.adapt.surgery import SurgeryError, channel_scores, keep_top, producers, prune, shrink_group
from hwadapt.arch import width_groups
from hwadapt.families import build
from hwadapt.errors import HwadaptError
from hwadapt.materialize.torch_net import Net


def _trained_like(family: str, width: float) -> Net:
    """A small network with non-trivial BN statistics (so slicing errors show)."""
    torch.manual_seed(0)
    net = Net(build(family, width=width, resolution=32, num_classes=10))
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _dependency_graph(net: Net) -> tp.DependencyGraph:
    return tp.DependencyGraph().build_dependency(net, example_inputs=torch.randn(1, 3, 32, 32))


def _module_names(net: Net) -> dict[int, str]:
    return {id(m): name for name, m in net.named_modules()}


@pytest.mark.parametrize("family", ["mobilenet_v1", "mobilenet_v2"])
def test_width_groups_match_torch_pruning_dependency_groups(family):
    """Each channel group prunes exactly the convs/BNs torch-pruning couples to its producer."""
    net = _trained_like(family, 0.5)
    graph = _dependency_graph(net)
    names = _module_names(net)
    for group in width_groups(net.arch):
        producer = producers(net, group)[0][0].conv
        tp_group = graph.get_pruning_group(producer, tp.prune_conv_out_channels, idxs=[0])
        tp_modules = {names[id(dep.target.module)] for dep, _ in tp_group
                      if isinstance(dep.target.module, (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear))}
        ours = _group_modules(net, group)
        assert tp_modules == ours, group.name


def _group_modules(net: Net, group) -> set[str]:
    """The modules our surgery slices for ``group``: prune one channel, see what shrank."""
    keep = np.arange(1, group.width(net.arch))
    narrow = prune(net, {group.name: keep})
    old_shapes = {k: v.shape for k, v in net.state_dict().items()}
    changed = {k.rsplit(".", 1)[0] for k, v in narrow.state_dict().items() if v.shape != old_shapes[k]}
    return changed


@pytest.mark.parametrize("family", ["mobilenet_v1", "mobilenet_v2"])
def test_surgery_equals_torch_pruning(family):
    """Slicing every group at once gives torch-pruning's weights, and the same outputs.

    Every group drops the same number of (random) channels, so no new residual tie appears."""
    net = _trained_like(family, 0.5)
    rng = np.random.default_rng(1)
    keep = {}
    for group in width_groups(net.arch):
        width = group.width(net.arch)
        keep[group.name] = np.sort(rng.choice(width, size=width - 3, replace=False))
    ours = prune(net, keep)

    reference = copy.deepcopy(net)
    graph = _dependency_graph(reference)
    for group in width_groups(net.arch):
        dropped = sorted(set(range(group.width(net.arch))) - set(keep[group.name].tolist()))
        if dropped:
            conv = producers(reference, group)[0][0].conv
            tp_group = graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=dropped)
            assert graph.check_pruning_group(tp_group)
            tp_group.prune()
    expected = reference.state_dict()
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), reference.eval()(x))


def test_keeping_every_channel_is_the_identity():
    net = _trained_like("mobilenet_v2", 0.35)
    same = prune(net, {g.name: np.arange(g.width(net.arch)) for g in width_groups(net.arch)})
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(same.eval()(x), net(x))


def test_shrink_group_keeps_the_largest_l2_filters():
    net = _trained_like("mobilenet_v1", 0.25)
    group = width_groups(net.arch)[3]
    scores = channel_scores(net, group)
    narrow = shrink_group(net, group.name, 8)
    kept = keep_top(scores, 8)
    assert group.width(narrow.arch) == 8
    assert scores[kept].min() >= np.delete(scores, kept).max()
    unit_old, unit_new = producers(net, group)[0][0], producers(narrow, width_groups(narrow.arch)[3])[0][0]
    assert torch.equal(unit_new.bn.running_mean, unit_old.bn.running_mean[torch.from_numpy(kept)])


def test_surgery_rejects_bad_channel_lists():
    net = _trained_like("mobilenet_v1", 0.25)
    with pytest.raises(SurgeryError):
        prune(net, {"out1": np.array([0, 0, 1])})
    with pytest.raises(HwadaptError):
        prune(net, {"nope": np.array([0])})
    with pytest.raises(SurgeryError):
        shrink_group(net, "out1", 8, criterion="magic")
