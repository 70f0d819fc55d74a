"""The latency knapsack (HALP): Taylor importance on BN, the knapsack against brute force,
targets, and a run interrupted and resumed. Toy family, digits, a real ONNX Runtime LUT."""
import itertools

import numpy as np
import pytest
import torch
from conftest import TOY, TOY_RES

from hwadapt.adapt import knapsack
from hwadapt.adapt.gamma import group_norms
from hwadapt.adapt.knapsack import (Choice, Taylor, knapsack_widths, prune_to, shown, solve, step_target,
                                    width_options)
from hwadapt.adapt.workflow import prepare_job
from hwadapt.arch import set_widths, width_groups
from hwadapt.families import build
from hwadapt.materialize.torch_net import Net


def test_targets_decay_geometrically_to_the_budget():
    targets = [step_target(10.0, 5.0, k, 4) for k in range(1, 5)]
    assert targets[-1] == pytest.approx(5.0) and all(a > b for a, b in zip(targets, targets[1:]))
    assert targets[1] / targets[0] == pytest.approx(targets[2] / targets[1])
    assert width_options(20, 8) == [8, 16, 20] and width_options(16, 8) == [8, 16] and width_options(6, 8) == [6]
    assert [k for k in range(1, 31) if shown(k, 30)] == [1, 8, 16, 23, 30]
    assert [k for k in range(1, 3) if shown(k, 2)] == [1, 2]


def test_the_knapsack_keeps_the_most_importance_within_the_capacity():
    rng = np.random.default_rng(0)
    for _ in range(30):
        options = []
        for g in range(3):
            widths = [8, 16, 24, 32][:rng.integers(2, 5)]
            values = np.sort(rng.random(len(widths)))
            costs = np.concatenate([[0.0], np.sort(rng.integers(1, 40, len(widths) - 1)) / 10])
            options.append(Choice(f"g{g}", widths, values, costs))
        capacity = rng.uniform(0.5, 8)
        best = max((sum(c.values[j] for c, j in zip(options, pick)), pick)
                   for pick in itertools.product(*[range(len(c.widths)) for c in options])
                   if sum(c.costs[j] for c, j in zip(options, pick)) <= capacity * (1 - 1e-3))
        got = solve(options, capacity)
        kept = [c.widths.index(got[c.name]) for c in options]
        assert sum(c.costs[j] for c, j in zip(options, kept)) <= capacity + 1e-12
        assert sum(c.values[j] for c, j in zip(options, kept)) >= best[0] - 1e-12
    assert solve(options, -1.0) == {c.name: c.widths[0] for c in options}


def test_taylor_importance_is_the_first_order_term_on_every_bn_of_a_group():
    torch.manual_seed(0)
    net = Net(build(TOY, resolution=TOY_RES, num_classes=10)).train()
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        torch.nn.init.normal_(bn.weight)
        torch.nn.init.normal_(bn.bias)
    hook = Taylor(net)
    x, y = torch.randn(8, 3, TOY_RES, TOY_RES), torch.randint(0, 10, (8,))
    torch.nn.functional.cross_entropy(net(x), y).backward()
    hook.after_backward()
    found = hook.importance()
    for group in group_norms(net, "knapsack"):
        expected = sum(((bn.weight * bn.weight.grad + bn.bias * bn.bias.grad)[part] ** 2).detach().numpy()
                       for bn, part in group.norms)
        np.testing.assert_allclose(found[group.name], expected, rtol=1e-5)


def test_a_pointwise_bn_before_a_depthwise_one_says_nothing_of_importance():
    """Why the depthwise BNs count: scaling a pointwise channel is undone by the next BN."""
    torch.manual_seed(0)
    net = Net(build("mobilenet_v1", width=0.25, resolution=16, num_classes=10)).train()
    x, y = torch.randn(16, 3, 16, 16), torch.randint(0, 10, (16,))
    torch.nn.functional.cross_entropy(net(x), y).backward()
    pointwise, depthwise = net.blocks[3].pw.bn, net.blocks[4].dw.bn
    first_order = [(bn.weight * bn.weight.grad + bn.bias * bn.bias.grad).abs().sum().item()
                   for bn in (pointwise, depthwise)]
    assert first_order[0] < 1e-3 * first_order[1]


def test_the_pick_meets_the_target_and_keeps_the_most_important_prefix(toy_checkpoint, toy_lut, tmp_path):
    job, _ = prepare_job("knapsack", toy_checkpoint, toy_lut, "digits", tmp_path / "job", budget_ratio=0.85)
    arch, rng = job.base.arch, np.random.default_rng(0)
    importance = {g.name: rng.random(g.width(arch)) for g in width_groups(arch)}
    for target in (0.9 * job.predictor.predict_ms(arch), job.budget_ms):
        widths = knapsack_widths(arch, importance, job.predictor, target, 8)
        assert job.predictor.predict_ms(set_widths(arch, widths)) <= target
        assert all(w in width_options(g.width(arch), 8) for g in width_groups(arch) for w in [widths[g.name]])
    pruned = prune_to(job.base, importance, widths)
    kept = pruned.blocks[0].conv.conv.weight.detach()
    top = np.sort(np.argsort(-importance["out0"])[:widths["out0"]])
    torch.testing.assert_close(kept, job.base.blocks[0].conv.conv.weight.detach()[torch.from_numpy(top)])


def test_an_interrupted_run_resumes_to_the_same_steps(toy_checkpoint, toy_lut, tmp_path, monkeypatch):
    settings = {"prune_steps": 3, "interval_steps": 4, "finetune_epochs": 1, "batch_size": 64}

    def run(out):
        job, config = prepare_job("knapsack", toy_checkpoint, toy_lut, "digits", out, budget_ratio=0.85,
                                  settings=settings)
        return knapsack.adapt(job, config)

    straight = run(tmp_path / "straight")
    real = knapsack.prune_step

    def stop_at_two(job, settings, net, step, base_ms):
        if step == 2:
            raise KeyboardInterrupt
        return real(job, settings, net, step, base_ms)

    monkeypatch.setattr(knapsack, "prune_step", stop_at_two)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed")
    monkeypatch.setattr(knapsack, "prune_step", real)
    resumed = run(tmp_path / "resumed")
    assert [row["step"] for row in resumed["steps"]] == [1, 2, 3]
    assert resumed["steps"] == straight["steps"] and resumed["final"] == straight["final"]
    assert straight["final"]["predicted_ms"] <= 0.85 * straight["base"]["predicted_ms"]
