"""MorphNet and network slimming, and the gamma-L1 machinery they share: BN gates of each
channel group, the weighted L1, resumable structure learning, the expand step, the
LUT-chosen threshold, and bad input for the three BN-based methods. Toy family, digits,
a real ONNX Runtime LUT."""
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TOY, TOY_RES
from typer.testing import CliRunner

from hwadapt.adapt import METHODS, workflow
from hwadapt.adapt.gamma import GammaL1, group_norms, magnitudes
from hwadapt.adapt.marginal import flops, margins, tile_span
from hwadapt.adapt.morphnet import _scaled, ceiling, expand
from hwadapt.adapt.registry import MethodError
from hwadapt.adapt.report import AdaptReport
from hwadapt.adapt.shrink import ShrinkPlan, charge, shrink
from hwadapt.adapt.slimming import cut_widths, lut_threshold
from hwadapt.adapt.workflow import prepare_job
from hwadapt.arch import Arch, set_widths, width_groups
from hwadapt.cli.main import app
from hwadapt.adapt.proposals import minimum_widths
from hwadapt.families import build
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.materialize.torch_net import Net, save_checkpoint

runner = CliRunner()
BN_METHODS = ("morphnet", "knapsack", "slimming")


def _names(net):
    return {id(m): name for name, m in net.named_modules()}


@pytest.fixture
def job(toy_checkpoint, toy_lut, tmp_path):
    predictor = LatencyPredictor.load(toy_lut)
    base = build(TOY, resolution=TOY_RES, num_classes=10)
    floor, top = predictor.predict_ms(minimum_widths(base)), predictor.predict_ms(base)
    job, _ = prepare_job("morphnet", toy_checkpoint, toy_lut, "digits", tmp_path / "job",
                         budget_ms=floor + 0.4 * (top - floor))  # well inside what the toy LUT can reach
    return job


def _plan(job, price, coefficient, steps, refresh=10, span=8):
    return ShrinkPlan("morphnet", price, span, coefficient, steps, refresh, 0.05, 64, 1e-4, 1e-2, 8)


def test_a_groups_gates_are_its_producers_and_the_depthwise_bns_that_filter_it():
    v1 = Net(build("mobilenet_v1", width=0.25, resolution=32, num_classes=10))
    names = _names(v1)
    gates = {g.name: [names[id(bn)] for bn, _ in g.norms] for g in group_norms(v1, "morphnet")}
    assert gates["out1"] == ["blocks.1.pw.1", "blocks.2.dw.2"] and gates["out13"] == ["blocks.13.pw.1"]
    toy = Net(build(TOY, resolution=TOY_RES, num_classes=10))
    names = _names(toy)
    gates = {g.name: [names[id(bn)] for bn, _ in g.norms] for g in group_norms(toy, "morphnet")}
    assert gates["out2"] == ["blocks.2.pw.1", "blocks.3.project.1"]  # the residual tie: both branches
    assert gates["mid3"] == ["blocks.3.expand.1", "blocks.3.dw.1"]


def test_the_magnitude_is_the_largest_gate_and_the_penalty_its_weighted_l1():
    torch.manual_seed(0)
    net = Net(build(TOY, resolution=TOY_RES, num_classes=10))
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        torch.nn.init.normal_(bn.weight)
    groups = group_norms(net, "morphnet")
    found = magnitudes(net, "morphnet")
    for group in groups:
        each = np.stack([bn.weight.detach()[part].abs().numpy() for bn, part in group.norms])
        np.testing.assert_allclose(found[group.name], each.max(axis=0))
    hook = GammaL1(net, "morphnet", 0.5)
    hook.weights = {g.name: float(i + 1) for i, g in enumerate(groups)}
    expected = 0.5 * sum((i + 1) * found[g.name].sum() for i, g in enumerate(groups))
    penalty = hook.penalty()
    assert float(penalty.detach()) == pytest.approx(expected, rel=1e-5)
    assert hook.mean_penalty() == pytest.approx(expected, rel=1e-5)
    penalty.backward()
    tied = next(g for g in groups if g.name == "out2")
    (first, part), (second, _) = tied.norms
    larger = first.weight.detach()[part].abs() >= second.weight.detach()[part].abs()
    pushed = first.weight.grad[part] != 0
    assert torch.equal(pushed, larger)  # only the largest gate of a channel is charged


def _without_bn(checkpoint):
    """A network whose second block's pointwise convolution has no BN (no family builds one)."""
    from hwadapt.materialize.torch_net import load_checkpoint

    net, extra = load_checkpoint(checkpoint)
    net.blocks[1].pw[1] = torch.nn.Identity()
    return net, extra


@pytest.mark.parametrize("method", BN_METHODS)
def test_a_network_without_bn_is_refused_before_anything_is_written(method, toy_checkpoint, toy_lut, tmp_path,
                                                                    monkeypatch):
    net, _ = _without_bn(toy_checkpoint)
    with pytest.raises(MethodError, match="channel group out1"):
        METHODS[method].check(net, METHODS[method].settings())
    monkeypatch.setattr(workflow, "load_checkpoint", lambda *args, **kwargs: _without_bn(toy_checkpoint))
    out = tmp_path / "run"
    result = runner.invoke(app, ["adapt", "--method", method, "--checkpoint", str(toy_checkpoint), "--lut",
                                 str(toy_lut), "--out", str(out), "--data", "digits", "--budget-ratio", "0.85"])
    assert result.exit_code == 1 and "needs a BatchNorm" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def _adapt(checkpoint, lut, out, method, *extra):
    return runner.invoke(app, ["adapt", "--method", method, "--checkpoint", str(checkpoint), "--lut", str(lut),
                               "--out", str(out), "--data", "digits", *extra])


def test_unknown_cost_or_retrain_is_a_one_line_error(toy_checkpoint, toy_lut, tmp_path):
    for option, value in (("--cost", "energy"), ("--retrain", "never")):
        out = tmp_path / value
        result = _adapt(toy_checkpoint, toy_lut, out, "morphnet", "--budget-ratio", "0.85", option, value)
        assert result.exit_code == 1 and f"unknown {option} '{value}'" in result.output and not out.exists()
        assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("method", BN_METHODS)
def test_the_workflows_refusals_hold_for_these_methods(method, toy_checkpoint, toy_lut, tmp_path):
    result = _adapt(toy_checkpoint, toy_lut, tmp_path / "low", method, "--budget-ms", "0.00001")
    assert result.exit_code == 1 and "out of reach" in result.output and not (tmp_path / "low").exists()
    other = save_checkpoint(Net(build("tiny", resolution=16, num_classes=10)), tmp_path / "tiny")
    result = _adapt(other, toy_lut, tmp_path / "other", method, "--budget-ratio", "0.85")
    assert result.exit_code == 1 and f"LUT was built for family='{TOY}'" in result.output
    assert not (tmp_path / "other").exists()


def test_expand_takes_the_largest_multiplier_within_the_budget(job):
    arch = job.base.arch
    groups = width_groups(arch)
    alive = {g.name: max(0, g.width(arch) // 2 - 5 * i) for i, g in enumerate(groups)}
    alive[groups[-1].name] = 0  # a group the regulariser emptied
    top = {g.name: g.width(arch) for g in groups}
    learned = set_widths(arch, {name: max(8, w) for name, w in alive.items()})
    price = job.predictor.predict_ms
    # a budget between the narrowest network and the alive structure's own price
    narrowest, own = (price(set_widths(arch, _scaled(alive, top, m, 8, 8))) for m in (0.0, 1.0))
    budget = (narrowest + own) / 2
    result = expand(learned, alive, top, job.predictor, budget, 8)
    assert result.predicted_ms == pytest.approx(price(result.arch)) and result.predicted_ms <= budget
    assert result.widths[groups[-1].name] == 8 and result.multiplier > 0
    assert all(w % 8 == 0 and 8 <= w <= top[name] for name, w in result.widths.items())
    wider = [m for m in np.linspace(result.multiplier, 20 * result.multiplier, 400)
             if _scaled(alive, top, m, 8, 8) != result.widths]
    assert wider, "some larger multiplier widens the network"
    assert price(set_widths(arch, _scaled(alive, top, wider[0], 8, 8))) > budget


def test_the_ceiling_is_the_network_when_fine_tuning_and_the_full_family_when_training_anew():
    half = Net(build(TOY, width=0.5, resolution=TOY_RES, num_classes=10))
    full = build(TOY, width=1.0, resolution=TOY_RES, num_classes=10)
    assert ceiling(half, "finetune") == {g.name: g.width(half.arch) for g in width_groups(half.arch)}
    assert ceiling(half, "scratch") == {g.name: g.width(full) for g in width_groups(full)}


def test_channels_are_charged_their_marginal_price_at_the_alive_structure(job):
    net = Net(job.base.arch)
    with torch.no_grad():
        net.blocks[2].pw.bn.weight[:40] = 0.0  # 40 of out2's channels dead in both its producers
        net.blocks[3].project.bn.weight[:40] = 0.0
        net.blocks[3].expand.bn.weight.zero_()  # and every channel of mid3 in both its gates
        net.blocks[3].dw.bn.weight.zero_()
    hook = GammaL1(net, "morphnet", 1.0)
    for price in (job.predictor.predict_ms, flops):
        plan = _plan(job, price, 1.0, 10, span=tile_span(job.predictor))
        charge(net, plan, hook)
        widths = {g.name: g.width(net.arch) for g in width_groups(net.arch)}
        alive = set_widths(net.arch, {**widths, "out2": 24, "mid3": 8})
        expected = {name: max(0.0, m.per_channel) for name, m in margins(alive, price, plan.span).items()}
        assert hook.weights == pytest.approx(expected)


def test_structure_learning_shrinks_the_alive_structure_and_resumes(job, tmp_path):
    price = job.predictor.predict_ms
    coefficient = 500 / price(job.base.arch)  # strong enough to empty channels in 20 digits steps
    span = tile_span(job.predictor)
    straight = Net(job.base.arch)
    straight.load_state_dict(job.base.state_dict())
    history = shrink(straight, job, _plan(job, price, coefficient, 20, span=span), tmp_path / "straight", seed=0)
    assert [row["step"] for row in history] == [0, 10, 20]
    assert sum(history[-1]["alive"].values()) < sum(history[0]["alive"].values())
    alive = set_widths(job.base.arch, history[-1]["alive"])
    assert history[-1]["cost"] == pytest.approx(job.predictor.predict_ms(alive))
    assert 0 < history[-1]["penalty"] < history[0]["penalty"] and history[0]["loss"] is None
    resumed = Net(job.base.arch)
    resumed.load_state_dict(job.base.state_dict())
    shrink(resumed, job, _plan(job, price, coefficient, 10, span=span), tmp_path / "resumed", seed=0)  # half-way
    again = shrink(resumed, job, _plan(job, price, coefficient, 20, span=span), tmp_path / "resumed", seed=0)
    assert [row["step"] for row in again] == [0, 10, 20]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_the_lut_threshold_is_the_lowest_magnitude_that_meets_the_budget(job):
    rng = np.random.default_rng(0)
    arch = job.base.arch
    found = {g.name: rng.random(g.width(arch)) for g in width_groups(arch)}
    cut = lut_threshold(arch, found, job.predictor, job.budget_ms, 8)
    assert cut.predicted_ms <= job.budget_ms
    assert cut.widths == cut_widths(found, cut.threshold, 8)
    assert all(w % 8 == 0 for w in cut.widths.values())
    lower = max(v for values in found.values() for v in values if v < cut.threshold)
    assert job.predictor.predict_ms(set_widths(arch, cut_widths(found, lower, 8))) > job.budget_ms
    assert cut_widths({"g": np.array([0.1, 0.5, 0.6, 0.7] * 5)}, 0.3, 8) == {"g": 16}  # 15 pass: 16 kept
    assert cut_widths({"g": np.array([0.1, 0.5] * 5)}, 0.3, 8) == {"g": 8}  # at least 8
    assert cut_widths({"g": np.ones(20)}, 0.3, 8) == {"g": 20}  # all of them at most


def test_morphnet_cycles_from_scratch_with_the_flop_cost(toy_checkpoint, toy_lut, tmp_path):
    out = tmp_path / "morph"
    result = _adapt(toy_checkpoint, toy_lut, out, "morphnet", "--budget-ratio", "0.85", "--cost", "flops",
                    "--strength", "20", "--cycles", "2", "--retrain", "scratch", "--shrink-epochs", "1",
                    "--refresh-steps", "10", "--retrain-epochs", "1", "--batch-size", "64")
    assert result.exit_code == 0, result.output
    report = AdaptReport.load(out / "report.json")
    assert report.predicted_ms <= report.budget_ms and report.details["cost"] == "flops"
    cycles = report.details["cycles"]
    assert [c["cycle"] for c in cycles] == [1, 2] and all(c["predicted_ms"] <= report.budget_ms for c in cycles)
    for index, cycle in enumerate(cycles, 1):
        learned = Arch.load(out / f"cycle{index}" / "learned.json")
        assert {g.name: g.width(learned) for g in width_groups(learned)} == \
            {name: max(8, width) for name, width in cycle["learned"].items()}
    assert (out / "regulariser.png").stat().st_size > 0
    assert list(pd.read_csv(out / "family.csv")["stage"]) == ["base", "cycle 1", "long-term"]
