"""Expected latency from a predictor, the two loss forms, target checks, and landing on a target."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hwadapt.arch import lower
from hwadapt.families.proxyless import ProxylessSpace
from hwadapt.errors import HwadaptError
from hwadapt.lut.predictor import LatencyPredictor
from hwadapt.nas.derive import adjust_to_target, calibrated_member
from hwadapt.nas.latency import LatencyTable, SearchError, latency_loss, latency_table

SPACE = ProxylessSpace(resolution=32, num_classes=10, width=0.5, depth=2)


class OpCostPredictor(LatencyPredictor):
    """A LatencyPredictor priced without a table: each op costs its MACs at a fixed rate,
    plus a per-inference overhead."""

    def __init__(self, missing_kernel: int | None = None) -> None:
        self.missing_kernel = missing_kernel

    def check(self, arch) -> None:
        assert arch.family == "proxyless"

    def predict(self, arch):
        ops = lower(arch)
        if any(op.kind == "dwconv" and op.kernel == self.missing_kernel for op in ops):
            raise HwadaptError(f"no dwconv k{self.missing_kernel} rows")
        op_ms = [op.cin * op.cout * op.kernel ** 2 * op.out_size ** 2 / 2e7 / (op.cin if op.kind == "dwconv" else 1)
                 + 0.002 for op in ops]
        block_ms = [sum(ms for op, ms in zip(ops, op_ms) if op.block == b) for b in range(len(arch.blocks))]
        return SimpleNamespace(total_ms=0.05 + sum(op_ms), fixed_ms=0.05, op_ms=op_ms, block_ms=block_ms,
                               interpolated=False)


@pytest.fixture(scope="module")
def table() -> LatencyTable:
    return latency_table(OpCostPredictor(), SPACE)


def test_table_prices_every_member_like_the_predictor(table):
    rng = np.random.default_rng(0)
    predictor = OpCostPredictor()
    positions = SPACE.positions()
    for _ in range(5):
        picks = [int(rng.integers(len(p.choices()))) for p in positions]
        arch = SPACE.member([p.choices()[i] for p, i in zip(positions, picks)])
        assert table.of(picks) == pytest.approx(predictor.predict(arch).total_ms, rel=1e-9)


def test_expected_latency_is_differentiable_and_exact_at_one_hot(table):
    logits = [torch.zeros(len(c), requires_grad=True) for c in table.costs]
    expected = table.expected([torch.softmax(a, 0) for a in logits])
    expected.backward()
    assert float(expected.detach()) == pytest.approx(table.fixed_ms + sum(np.mean(c) for c in table.costs), rel=1e-5)
    costly = int(np.argmax(table.costs[0]))
    assert float(logits[0].grad[costly]) > 0 > float(logits[0].grad[int(np.argmin(table.costs[0]))])
    one_hot = [torch.nn.functional.one_hot(torch.tensor(i), len(c)).float() for i, c in zip(table.fastest(), table.costs)]
    assert float(table.expected(one_hot)) == pytest.approx(table.of(table.fastest()), rel=1e-5)


def test_missing_candidate_ops_are_an_error():
    with pytest.raises(SearchError, match="lacks ops of the candidate k7"):
        latency_table(OpCostPredictor(missing_kernel=7), SPACE)


def test_targets_outside_the_space_are_errors(table):
    low, high = table.of(table.fastest()), table.of(table.slowest())
    with pytest.raises(SearchError, match=f"below the fastest.*{low:.4g} ms"):
        table.check_target(low * 0.9)
    with pytest.raises(SearchError, match="above the slowest"):
        table.check_target(high * 1.1)
    table.check_target((low + high) / 2)


def test_loss_forms():
    ce = torch.tensor(2.0)
    target = 0.8
    assert float(latency_loss(ce, torch.tensor(target), target, form="mul", alpha=0.2)) == pytest.approx(0.4)
    assert float(latency_loss(ce, torch.tensor(target), target, form="add")) == pytest.approx(2.0)
    slow = torch.tensor(1.2, requires_grad=True)
    mul = latency_loss(ce, slow, target, form="mul", alpha=0.2, beta=0.3)
    expected = 0.2 * 2.0 * (math.log(1200) / math.log(800)) ** 0.3
    assert float(mul.detach()) == pytest.approx(expected, rel=1e-6)
    add = latency_loss(ce, slow, target, form="add", lam=0.1)
    assert float(add.detach()) == pytest.approx(2.0 + 0.1 * 0.4 / 0.8)
    for loss in (mul, add):
        (grad,) = torch.autograd.grad(loss, slow)
        assert float(grad) > 0  # slower is penalised in both forms
    with pytest.raises(SearchError, match="unknown latency loss form"):
        latency_loss(ce, slow, target, form="exp")


def test_adjust_lands_in_the_band_and_prefers_likely_choices(table):
    rng = np.random.default_rng(1)
    log_probs = [list(np.log(rng.dirichlet(np.ones(len(c))))) for c in table.costs]
    start = [int(np.argmax(lp)) for lp in log_probs]
    low, high = table.of(table.fastest()), table.of(table.slowest())
    for target in np.linspace(low, high, 7)[1:-1]:
        result = adjust_to_target(table, log_probs, start, float(target), band=0.02)
        assert abs(result.predicted_ms - target) <= 0.02 * target
        assert result.predicted_ms == pytest.approx(table.of(result.choices))
    same = adjust_to_target(table, log_probs, start, table.of(start), band=0.02)
    assert same.choices == start and not same.swaps


def test_calibration_corrects_a_biased_lut(table):
    """If whole networks run 25% slower than the LUT's sum, re-aiming still lands on target."""
    log_probs = [[0.0] * len(c) for c in table.costs]
    start = table.fastest()
    target = (table.of(table.fastest()) + table.of(table.slowest())) / 2 * 1.25
    measure = lambda choices: 1.25 * table.of(choices)  # noqa: E731
    adjustment, rounds = calibrated_member(table, log_probs, start, target, measure, tolerance=0.05)
    assert abs(measure(adjustment.choices) - target) <= 0.025 * target
    assert len(rounds) == 2 and rounds[0].measured_ms > target * 1.05


def test_architecture_steps_follow_the_latency_loss():
    """With a strong latency weight, architecture steps move the expected latency down to
    the target: the latency gradient reaches the logits through Adam and the rescaling."""
    from hwadapt.nas.search import Searcher, SearchConfig
    from hwadapt.nas.supernet import SuperNet

    torch.manual_seed(0)
    space = ProxylessSpace(resolution=16, num_classes=4, width=0.25, depth=2)
    table = latency_table(OpCostPredictor(), space)
    low, high = table.of(table.fastest()), table.of(table.slowest())
    config = SearchConfig(target_ms=low + 0.1 * (high - low), loss_form="add", lam=1e4, arch_lr=0.05)
    searcher = Searcher(SuperNet(space), table, None, config)
    start = float(table.expected(searcher.net.probabilities()).detach())
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    generator = torch.Generator().manual_seed(0)
    for _ in range(30):
        searcher.arch_step(x, y, generator)
    end = float(table.expected(searcher.net.probabilities()).detach())
    assert end < start - 0.5 * (start - config.target_ms)


def _land(target_fraction: float, seed: int, steps: int = 60) -> tuple[float, float, float, float]:
    """``steps`` architecture steps of the target form (progress 0 to 1) on random images,
    whose accuracy gradient is pure noise; returns (target, E before, E after, argmax)."""
    from hwadapt.nas.search import Searcher, SearchConfig
    from hwadapt.nas.supernet import SuperNet

    torch.manual_seed(seed)
    space = ProxylessSpace(resolution=16, num_classes=4, width=0.25, depth=2)
    table = latency_table(OpCostPredictor(), space)
    low, high = table.of(table.fastest()), table.of(table.slowest())
    config = SearchConfig(target_ms=low + target_fraction * (high - low), arch_lr=0.05)
    searcher = Searcher(SuperNet(space), table, None, config)
    before = float(table.expected(searcher.net.probabilities()).detach())
    generator = torch.Generator().manual_seed(seed)
    for step in range(steps):
        x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 4, (8,))
        searcher.arch_step(x, y, generator, progress=step / (steps - 1))
    after = float(table.expected(searcher.net.probabilities()).detach())
    return config.target_ms, before, after, table.of(searcher.net.argmax())


@pytest.mark.parametrize("fraction", [0.2, 0.8])
def test_the_target_form_lands_the_argmax_on_targets_across_the_space(fraction):
    """The search alone, before any derive swap: E[latency] moves towards the target, and
    the argmax ends within 10% of it, low in the space and high (three seeds each)."""
    for seed in range(3):
        target, before, after, argmax = _land(fraction, seed)
        assert abs(after - target) < abs(before - target), (seed, before, after, target)
        assert abs(argmax - target) <= 0.10 * target, (seed, argmax, target)
