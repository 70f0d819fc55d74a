"""Lottery tickets and supermasks: masks that hold through training, pruning bookkeeping,
rewinding, the controls, resuming and refusing, supermask criteria, edge-popup's top-k,
sparse model files and one-line errors for bad input."""
from __future__ import annotations

import json
import tempfile
from dataclasses import replace

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from conftest import FAST_PLAN
from hwadapt.arch import set_widths, width_groups
from hwadapt.cli.main import app
from hwadapt.data import load_dataset
from hwadapt.families import build
from hwadapt.lottery import imp
from hwadapt.lottery.cost import Form, measure_forms
from hwadapt.lottery.criteria import CriterionError, criterion_masks
from hwadapt.lottery.imp import LotterySettings, prepare_lottery, run_lottery
from hwadapt.lottery.loop import Schedule
from hwadapt.lottery.masks import apply_masks, dense_masks, hold_masks, kept, layer_sparsity, sparsity, total
from hwadapt.lottery.prune import PruneError, check_rate, magnitude_masks, random_masks
from hwadapt.lottery.rundir import RunError
from hwadapt.lottery.scored import ScoredNet
from hwadapt.lottery.sparse_export import csr_rows, save_form
from hwadapt.lottery.structured import StructuredError, channel_keep, narrowed
from hwadapt.materialize.torch_net import Net, load_checkpoint
from hwadapt.progress import Reporter
from hwadapt.train import TrainConfig
from hwadapt.train.loop import make_optimizer, train_steps

runner = CliRunner()
RES = 16
# a lottery small enough for a test: ResNet-20 x0.25 on 512 digits at 16 px, 8 steps an epoch
TINY = LotterySettings(family="resnet20", data="digits", width=0.25, resolution=RES, levels=1, epochs=2,
                       rewind_steps=3, lr=0.1, batch_size=64, seed=0, train_images=512)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", RES)


def _net(seed: int = 0) -> Net:
    torch.manual_seed(seed)
    return Net(build("resnet20", width=0.25, resolution=RES, num_classes=10))


def _steps(net, digits, optimizer, steps=4, seed=0):
    train_steps(net, digits, optimizer, base_lr=0.1, first_step=0, steps=steps, total_steps=100, batch_size=64,
                rng=np.random.default_rng(seed))


# -- masks hold through training -----------------------------------------------------
def _half(net):
    """A random mask removing half of each layer."""
    masks = magnitude_masks(net, dense_masks(net), 0.5, layerwise=True)
    return random_masks(masks, torch.Generator().manual_seed(1))


def test_pruned_weights_stay_zero_through_gradient_momentum_and_weight_decay(digits):
    net = _net()
    optimizer = make_optimizer(net, TrainConfig(lr=0.1, weight_decay=5e-3))
    _steps(net, digits, optimizer)  # dense steps: every weight now has momentum
    masks = _half(net)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    hold_masks(optimizer, net, masks)
    _steps(net, digits, optimizer, seed=1)
    params = dict(net.named_parameters())
    assert sparsity(masks) == pytest.approx(0.5, abs=0.01)
    for name, mask in masks.items():
        assert torch.all(params[name][~mask] == 0), name
        assert torch.all(optimizer.state[params[name]]["momentum_buffer"][~mask] == 0), name
        assert not torch.equal(params[name][mask], before[name][mask]), name  # the survivors train


def test_zeroing_values_alone_lets_momentum_and_decay_move_pruned_weights(digits):
    """The anchor's pitfall, shown: the test above can fail."""
    net = _net()
    optimizer = make_optimizer(net, TrainConfig(lr=0.1, weight_decay=5e-3))
    _steps(net, digits, optimizer)
    masks = _half(net)
    apply_masks(net, masks)
    _steps(net, digits, optimizer, seed=1)
    params = dict(net.named_parameters())
    assert any(torch.any(params[name][~mask] != 0) for name, mask in masks.items())


# -- pruning bookkeeping ----------------------------------------------------------------
def test_global_pruning_removes_the_rate_of_the_remaining_smallest_weights():
    net = _net()
    masks = dense_masks(net)
    assert sparsity(masks) == 0 and not any(name.startswith("fc") for name in masks)  # classifier not pruned
    for level in range(1, 4):
        alive = kept(masks)
        masks = magnitude_masks(net, masks, 0.2)
        apply_masks(net, masks)
        assert kept(masks) == alive - round(0.2 * alive)
        assert sparsity(masks) == pytest.approx(1 - 0.8 ** level, abs=1e-3)
    params = dict(net.named_parameters())
    survivors = torch.cat([params[n][m].abs() for n, m in masks.items()])
    pruned_once = torch.cat([params[n].detach().abs()[~m] for n, m in masks.items()])
    assert survivors.min() >= pruned_once.max()  # the pruned weights were zero, every survivor is not
    layers = layer_sparsity(masks)
    assert max(layers.values()) - min(layers.values()) > 0.1  # global: layers end at different sparsities


def test_layerwise_pruning_prunes_each_layer_alike():
    net = _net()
    masks = magnitude_masks(net, magnitude_masks(net, dense_masks(net), 0.5, layerwise=True), 0.5, layerwise=True)
    for name, mask in masks.items():
        alive = mask.numel() - round(0.5 * mask.numel())
        assert int(mask.sum()) == max(1, alive - round(0.5 * alive)), name


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.2, 1.5])
def test_rates_outside_zero_one_are_refused(rate):
    with pytest.raises(PruneError, match=r"--rate must be in \(0, 1\)"):
        check_rate(rate)


# -- rewinding and the controls --------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished tiny lottery (one torch thread, as the tests that repeat its steps use:
    module fixtures start before the per-test thread setting)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("lottery") / "run"
    job = prepare_lottery(TINY, out)
    try:
        return job, run_lottery(job)
    finally:
        torch.set_num_threads(threads)


def test_a_lottery_run_writes_its_levels_and_report(tiny_run):
    job, report = tiny_run
    levels = pd.read_csv(job.out / "levels.csv")
    assert list(levels.columns) == ["level", "sparsity", "test_accuracy", "reinit_accuracy", "random_mask_accuracy"]
    assert list(levels.level) == [0, 1] and levels.sparsity[1] == pytest.approx(0.2, abs=1e-3)
    assert np.isnan(levels.reinit_accuracy[0]) and 0 <= levels.random_mask_accuracy[1] <= 1
    saved = json.loads((job.out / "report.json").read_text())
    assert saved["levels"][1]["test_accuracy"] == pytest.approx(levels.test_accuracy[1])
    assert saved["steps"] == 16 and saved["settings"]["rewind_steps"] == 3
    for name in ("model.onnx", "model.tflite", "model.sparse.onnx", "model.sparse.tflite"):
        assert (job.folder(1) / name).is_file()


def test_the_rewind_point_holds_the_weights_after_k_steps(tiny_run, digits):
    job, _ = tiny_run
    net = imp.seeded_net(job, TINY.seed)
    optimizer = make_optimizer(net, job.schedule.config)
    train_steps(net, job.splits, optimizer, base_lr=TINY.lr, first_step=0, steps=TINY.rewind_steps,
                total_steps=job.schedule.total, batch_size=TINY.batch_size,
                rng=np.random.default_rng([TINY.seed, 0, 0]))
    rewound, _ = load_checkpoint(job.out / "rewind")
    initial, _ = load_checkpoint(job.out / "init")
    for (name, expected), got, first in zip(net.state_dict().items(), rewound.state_dict().values(),
                                            initial.state_dict().values()):
        assert torch.equal(expected, got), name
    assert not torch.equal(net.blocks[0].conv.conv.weight, initial.blocks[0].conv.conv.weight)


def test_each_arm_starts_from_its_weights_and_mask(tiny_run, monkeypatch, tmp_path):
    """Level 1's ticket starts from the rewound weights under the pruned mask, the re-init
    control from other weights under the same mask, the random-mask control from the
    rewound weights under a mask of the same layer-wise sparsity."""
    job, _ = tiny_run
    started = {}

    def record(job_, net, masks, level, arm, *, start, snapshot=None, folder=None):
        started[arm] = ({k: v.clone() for k, v in net.state_dict().items()}, masks, start)
        return 0.5

    monkeypatch.setattr(imp, "train_arm", record)
    monkeypatch.setattr(imp, "export_ticket", lambda job_, level: {})
    imp.pruned_level(job, 1)
    rewound, _ = load_checkpoint(job.out / "rewind")
    ticket_state, ticket_masks, start = started["ticket"]
    assert start == TINY.rewind_steps
    reinit_state, reinit_masks, _ = started["reinit"]
    random_state, random_masks_, _ = started["random_mask"]
    for name, value in rewound.state_dict().items():
        assert torch.equal(ticket_state[name], value) and torch.equal(random_state[name], value), name
    assert all(torch.equal(reinit_masks[n], ticket_masks[n]) for n in ticket_masks)
    assert not torch.equal(reinit_state["blocks.1.conv1.0.weight"], ticket_state["blocks.1.conv1.0.weight"])
    assert layer_sparsity(random_masks_) == layer_sparsity(ticket_masks)
    assert any(not torch.equal(random_masks_[n], ticket_masks[n]) for n in ticket_masks)
    _, trained_masks = imp.trained_arm(job, 1)  # the real run pruned the same weights
    assert all(torch.equal(trained_masks[n], ticket_masks[n]) for n in ticket_masks)


class _Interrupt(Exception):
    pass


class _InterruptAfter(Reporter):
    def __init__(self, steps: int) -> None:
        self.left = steps

    def advance(self, task, amount=1.0, status=None):
        self.left -= 1
        if self.left <= 0:
            raise _Interrupt


def test_an_interrupted_run_resumes_to_the_same_result(tiny_run, tmp_path):
    job, report = tiny_run
    with pytest.raises(_Interrupt):  # inside level 1's ticket, after level 0 and the rewind point
        run_lottery(replace(prepare_lottery(TINY, tmp_path / "run"), reporter=_InterruptAfter(16 + 5)))
    resumed = run_lottery(prepare_lottery(TINY, tmp_path / "run"))
    assert resumed.levels == report.levels
    for arm in ("ticket", "reinit", "random_mask"):
        a, _ = load_checkpoint(job.folder(1, arm))
        b, _ = load_checkpoint(tmp_path / "run" / "level-01" / arm)
        for x, y in zip(a.state_dict().values(), b.state_dict().values()):
            torch.testing.assert_close(x, y)


def test_a_resumed_run_with_other_settings_is_refused_naming_them(tiny_run):
    job, _ = tiny_run
    with pytest.raises(RunError, match=r"--rate: 0.2 in the run, 0.3 now; --rewind-steps: 3 in the run, 2 now"):
        run_lottery(prepare_lottery(replace(TINY, rate=0.3, rewind_steps=2), job.out))
    result = runner.invoke(app, ["lottery", "--family", "resnet20", "--width", "0.25", "--resolution", str(RES),
                                 "--data", "digits", "--levels", "1", "--epochs", "3", "--rewind-steps", "3",
                                 "--lr", "0.1", "--batch-size", "64", "--train-images", "512", "--out", str(job.out)])
    assert result.exit_code == 1 and "--epochs: 2 in the run, 3 now" in result.output
    assert len(result.output.strip().splitlines()) == 1


# -- bad input through the CLI ------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--rate", "1.5"], "--rate must be in (0, 1)"),
    (["--rate", "0"], "--rate must be in (0, 1)"),
    (["--rewind-steps", "22"], "--rewind-steps 22 is past the end of training: 2 epochs of 11 steps make 22 steps"),
])
def test_bad_lottery_input_is_one_line(args, message, tmp_path):
    result = runner.invoke(app, ["lottery", "--family", "resnet20", "--width", "0.25", "--resolution", str(RES),
                                 "--data", "digits", "--epochs", "2", "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert not (tmp_path / "run").exists()


def test_an_unknown_criterion_is_one_line(tmp_path):
    result = runner.invoke(app, ["supermask", "--family", "resnet20", "--data", "digits", "--method", "largest",
                                 "--out", str(tmp_path / "sm")])
    assert result.exit_code == 1 and "unknown criterion 'largest'; known: large_final" in result.output
    with pytest.raises(CriterionError):
        criterion_masks("smallest", {}, {}, 0.5, torch.Generator())


# -- supermasks ------------------------------------------------------------------------------
def test_supermask_criteria_on_a_toy_layer():
    init = {"w": torch.tensor([[1.0, -2.0, 0.5, 3.0, -0.1, 0.2]])}
    final = {"w": torch.tensor([[2.0, 1.5, -0.6, 2.5, -3.0, 0.1]])}

    def keep(name, sparsity=0.5):
        return criterion_masks(name, init, final, sparsity, torch.Generator().manual_seed(0))["w"][0].tolist()

    assert keep("large_final") == [True, False, False, True, True, False]  # |w_f| 2, 2.5, 3
    assert keep("magnitude_increase") == [True, False, True, False, True, False]  # +1, +0.1, +2.9
    assert keep("movement") == [False, True, True, False, True, False]  # 3.5, 1.1, 2.9
    # signs kept at 0, 3, 4, 5; of those |w_f| 2.5 and 3 are the largest
    assert keep("large_final_same_sign", 2 / 3) == [False, False, False, True, True, False]
    assert sum(keep("random")) == 3


def test_large_init_large_final_needs_both_ends_large():
    init = {"w": torch.tensor([5.0, 0.1, 4.0, 0.2])}
    final = {"w": torch.tensor([0.1, 5.0, 4.0, 0.3])}
    mask = criterion_masks("large_init_large_final", init, final, 0.75, torch.Generator())["w"]
    assert mask.tolist() == [False, False, True, False]


def _scored(keep=0.25):
    net = _net()
    values = {"blocks.1.conv1.0.weight": net.blocks[1].conv1.conv.weight.detach().clone()}
    return ScoredNet(net, values, "top_k", keep=keep), values


def test_edge_popup_keeps_each_layers_top_k_scores_by_magnitude():
    module, values = _scored(keep=0.25)
    score = module.scores[0]
    masks = module.hard_masks()["blocks.1.conv1.0.weight"]
    assert int(masks.sum()) == round(0.25 * score.numel())
    assert score.detach().abs()[masks].min() >= score.detach().abs()[~masks].max()


def test_edge_popup_gradient_reaches_the_scores_through_their_magnitude(digits):
    module, values = _scored(keep=0.5)
    name = "blocks.1.conv1.0.weight"
    x = torch.randn(4, 3, RES, RES)
    module.train()
    module(x).pow(2).sum().backward()
    # the same loss against the effective weight itself
    hard = module.hard_masks()[name].float()
    effective = (values[name] * hard).requires_grad_(True)
    torch.func.functional_call(module.net, {name: effective}, (x,)).pow(2).sum().backward()
    score = module.scores[0]
    torch.testing.assert_close(score.grad, effective.grad * values[name] * torch.sign(score.detach()))


def test_supermasks_from_a_lottery_run(tiny_run, tmp_path):
    job, _ = tiny_run
    for method in ("large_final_same_sign", "learned", "edge-popup"):
        result = runner.invoke(app, ["supermask", "--family", "resnet20", "--width", "0.25", "--resolution", str(RES),
                                     "--data", "digits", "--method", method, "--epochs", "1", "--sparsity", "0.6",
                                     "--train-images", "512", "--lottery", str(job.out),
                                     "--out", str(tmp_path / method)])
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / method / "report.json").read_text())
        assert report["method"] == method and 0 <= report["test_accuracy"] <= 1
        masked, extra = load_checkpoint(tmp_path / method / "masked")
        assert report["sparsity"] == pytest.approx(1 - kept(extra["masks"]) / total(extra["masks"]))
        if method != "learned":  # a criterion and edge-popup remove exactly --sparsity of every layer
            assert report["sparsity"] == pytest.approx(0.6, abs=2e-3)
    initial, _ = load_checkpoint(job.out / "init")
    masked, extra = load_checkpoint(tmp_path / "large_final_same_sign" / "masked")
    weight = "blocks.1.conv1.0.weight"
    mask = extra["masks"][weight]
    assert torch.equal(dict(masked.named_parameters())[weight][mask], dict(initial.named_parameters())[weight][mask])


# -- sparse files, their cost, the structured ticket ---------------------------------------
def test_sparse_files_compute_the_pruned_network():
    from ai_edge_litert.format_converter_wrapper_pybind11 import (TF_LITE_DIM_DENSE, TF_LITE_DIM_SPARSE_CSR,
                                                                   FormatConverterFp32)
    from ai_edge_litert.interpreter import Interpreter

    net = _net().eval()
    apply_masks(net, magnitude_masks(net, dense_masks(net), 0.8))
    x = torch.randn(1, 3, RES, RES)
    with torch.no_grad():
        expected = net(x).numpy()
    dense = (np.random.default_rng(0).standard_normal((4, 3, 3, 5)) * (np.arange(5) % 2)).astype(np.float32)
    values, segments, indices = csr_rows(dense)
    converter = FormatConverterFp32([4, 3, 3, 5], [0, 1, 2, 3], [TF_LITE_DIM_DENSE] * 3 + [TF_LITE_DIM_SPARSE_CSR],
                                    [], [])
    converter.DenseToSparse(dense)
    assert converter.GetDimMetadata()[-2:] == [segments.tolist(), indices.tolist()]  # LiteRT's own CSR
    np.testing.assert_allclose(converter.GetData(), values)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = save_form(net, "onnx", f"{tmp}/m.onnx")
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(session.run(None, {"input0": x.numpy()})[0], expected, atol=1e-5)
        tflite_path = save_form(net, "tflite", f"{tmp}/m.tflite")
        interpreter = Interpreter(model_path=str(tflite_path))
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.numpy().transpose(0, 2, 3, 1))
        interpreter.invoke()
        np.testing.assert_allclose(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), expected,
                                   atol=1e-5)
        ops = {op["op_name"] for op in interpreter._get_ops_details()}
        assert "DENSIFY" in ops
        assert onnx_path.stat().st_size < save_form(net, "onnx", f"{tmp}/d.onnx", sparse=False).stat().st_size


def test_forms_are_timed_together_with_file_sizes():
    net = _net().eval()
    pruned = _net().eval()
    apply_masks(pruned, magnitude_masks(pruned, dense_masks(pruned), 0.9))
    costs = measure_forms("ort-cpu", [Form("dense", net), Form("ticket", pruned, sparse=True)], windows=2,
                          plan=FAST_PLAN)
    assert [c.name for c in costs] == ["dense", "ticket"] and all(len(c.windows_ms) == 2 and c.ms > 0 for c in costs)
    assert costs[0].weight_sparsity == 0 and costs[1].weight_sparsity == pytest.approx(0.9, abs=1e-3)
    assert costs[1].file_bytes < costs[0].file_bytes


def test_a_structured_ticket_keeps_the_strongest_channels_at_the_target_widths():
    net = _net()
    groups = {g.name: g.width(net.arch) for g in width_groups(net.arch)}
    narrow = {name: max(8, width // 2) for name, width in groups.items() if name.startswith("mid")}
    target = set_widths(net.arch, narrow)
    keep = channel_keep(net, target)
    small = narrowed(net, keep, target)
    assert small.arch.to_dict()["blocks"] == target.to_dict()["blocks"]
    mid = next(name for name in narrow if len(keep[name]) < groups[name])
    block = int(mid.removeprefix("mid"))
    norms = net.blocks[block].conv1.conv.weight.detach().flatten(1).pow(2).sum(1)
    assert norms[keep[mid]].min() >= norms[np.setdiff1d(np.arange(groups[mid]), keep[mid])].max()
    other = build("resnet56", width=0.25, resolution=RES, num_classes=10)
    with pytest.raises(StructuredError):
        narrowed(net, keep, other)


def test_schedule_counts_steps(digits):
    schedule = Schedule.of(TrainConfig(epochs=3, batch_size=128), digits)
    assert schedule.per_epoch == -(-len(digits.train) // 128) and schedule.total == 3 * schedule.per_epoch
