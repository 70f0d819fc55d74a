"""Binarized paths: the two-path gradient rule, one path's parameters per step, rescaling,
and the derived member network."""
import torch
from torch import nn

from hwadapt.arch import Arch, lower
from hwadapt.families import build
from hwadapt.families.proxyless import SKIP, ProxylessSpace, choice_names, space_ops
from hwadapt.materialize.torch_net import Net
from hwadapt.nas.gates import two_path_alpha_grad
from hwadapt.nas.supernet import MixedOp, SuperNet

SPACE = ProxylessSpace(resolution=16, num_classes=4, width=0.25, depth=2)


class Scale(nn.Module):
    """A toy path: multiply by a fixed factor."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = nn.Parameter(torch.tensor(factor))

    def forward(self, x):
        return self.factor * x


def test_space_shape_and_candidates():
    positions = SPACE.positions()
    assert len(positions) == 2 * 5 + 1
    for p in positions:
        assert (SKIP in p.choices()) == p.inner == (p.stride == 1 and p.cin == p.out)
        assert len(p.choices()) in (6, 7)
    assert build("proxyless", resolution=32, num_classes=10).meta["choices"] == ["k3e6"] * 16
    kinds = {(op.kind, op.kernel) for op in space_ops(SPACE)}
    assert {("dwconv", 3), ("dwconv", 5), ("dwconv", 7)} <= kinds


def test_two_path_rule_is_the_softmax_jacobian():
    logits = torch.tensor([0.3, -1.2], dtype=torch.float64, requires_grad=True)
    gate_grads = torch.tensor([0.7, -0.4], dtype=torch.float64)
    (torch.softmax(logits, 0) * gate_grads).sum().backward()
    assert torch.allclose(two_path_alpha_grad(logits, gate_grads), logits.grad)
    eps = 1e-6
    for i in range(2):
        bump = torch.zeros(2, dtype=torch.float64)
        bump[i] = eps
        f = lambda z: float((torch.softmax(z, 0) * gate_grads).sum())  # noqa: E731
        numeric = (f(logits.detach() + bump) - f(logits.detach() - bump)) / (2 * eps)
        assert abs(numeric - float(two_path_alpha_grad(logits, gate_grads)[i])) < 1e-8


def test_two_paths_match_full_softmax_when_the_loss_is_linear():
    """With two candidates the pair is everything; for a loss linear in the output the
    binary-gate estimate equals the gradient of the softmax-weighted mixture."""
    torch.manual_seed(0)
    x, w = torch.randn(5), torch.randn(5)
    op = MixedOp([Scale(1.5), Scale(-0.5)])
    alpha = torch.tensor([0.2, -0.3], requires_grad=True)
    mixture = sum(p * c(x) for p, c in zip(torch.softmax(alpha, 0), op.candidates))
    reference = torch.autograd.grad((w * mixture).sum(), alpha)[0]
    for active, other in ((0, 1), (1, 0)):
        estimate = alpha.detach().clone().requires_grad_()
        op.use_two(active, other)
        (w * op(x)).sum().backward()
        op.add_alpha_grad(estimate)
        assert torch.allclose(estimate.grad, reference, atol=1e-6)


def test_gate_gradient_matches_finite_difference():
    torch.manual_seed(1)
    x, w = torch.randn(6), torch.randn(6)
    op = MixedOp([Scale(2.0), Scale(0.5), Scale(-1.0)])
    op.use_two(2, 0)
    loss = lambda y: ((w * y).sum()) ** 2  # noqa: E731 - nonlinear in the output
    loss(op(x)).backward()
    outputs = [c(x).detach() for c in op.candidates]
    for slot, index in enumerate((2, 0)):
        eps = 1e-3
        gates = [1.0, 0.0]
        up, down = list(gates), list(gates)
        up[slot] += eps
        down[slot] -= eps
        f = lambda g: float(loss(g[0] * outputs[2] + g[1] * outputs[0]))  # noqa: E731
        assert abs((f(up) - f(down)) / (2 * eps) - float(op.gates.grad[slot])) < 1e-2


def test_binary_gates_learn_the_best_path():
    """Repeated two-path steps with Adam (beta1=0) and rescaling move the probability to
    the path with the lowest loss."""
    torch.manual_seed(2)
    op = MixedOp([Scale(f) for f in (1.0, 0.2, 1.5, 0.8)])
    alpha = nn.Parameter(torch.zeros(4))
    optimizer = torch.optim.Adam([alpha], lr=0.05, betas=(0.0, 0.999))
    x = torch.ones(3)
    for _ in range(400):
        probs = torch.softmax(alpha.detach(), 0)
        pair = torch.multinomial(probs, 2)
        first = int(torch.multinomial(probs[pair], 1))
        op.use_two(int(pair[first]), int(pair[1 - first]))
        old = alpha.detach()[[op.active, op.other]].clone()
        optimizer.zero_grad()
        (op(x) ** 2).sum().backward()
        op.add_alpha_grad(alpha)
        optimizer.step()
        op.rescale(alpha, old)
    assert int(alpha.argmax()) == 1
    assert float(torch.softmax(alpha.detach(), 0)[1]) > 0.6


def test_rescale_keeps_unsampled_probabilities():
    torch.manual_seed(3)
    op = MixedOp([Scale(1.0) for _ in range(5)])
    alpha = torch.randn(5)
    before = torch.softmax(alpha, 0)
    op.use_two(1, 3)
    old = alpha[[1, 3]].clone()
    alpha[1] += 0.7
    alpha[3] -= 0.2
    op.rescale(alpha, old)
    after = torch.softmax(alpha, 0)
    assert torch.allclose(after[[0, 2, 4]], before[[0, 2, 4]], atol=1e-6)
    assert torch.allclose(after[[1, 3]].sum(), before[[1, 3]].sum(), atol=1e-6)
    assert after[1] > before[1]


def _params_with_grad(module: nn.Module) -> bool:
    return any(p.grad is not None for p in module.parameters())


def test_weight_step_trains_only_the_sampled_path():
    torch.manual_seed(4)
    net = SuperNet(SPACE)
    picks = net.sample_one()
    nn.functional.cross_entropy(net(torch.randn(3, 3, 16, 16)), torch.tensor([0, 1, 2])).backward()
    for op, pick in zip(net.mixed, picks):
        trained = [i for i, c in enumerate(op.candidates) if _params_with_grad(c)]
        assert trained == ([] if op.candidates[pick].__class__.__name__ == "SkipModule" else [pick])
    assert all(a.grad is None for a in net.alphas)


def test_arch_step_trains_one_path_and_gives_pair_gradients():
    torch.manual_seed(5)
    net = SuperNet(SPACE)
    pairs = net.sample_two()
    nn.functional.cross_entropy(net(torch.randn(3, 3, 16, 16)), torch.tensor([0, 1, 2])).backward()
    net.accumulate_alpha_grads()
    for op, alpha, (active, other) in zip(net.mixed, net.alphas, pairs):
        assert [i for i, c in enumerate(op.candidates) if _params_with_grad(c)] in ([active], [])
        untouched = [i for i in range(len(alpha)) if i not in (active, other)]
        assert torch.all(alpha.grad[untouched] == 0)
        assert torch.isclose(alpha.grad.sum(), torch.tensor(0.0), atol=1e-7)  # softmax Jacobian rows


def test_derived_member_round_trips_through_json_with_inherited_weights():
    torch.manual_seed(6)
    net = SuperNet(SPACE)
    for alpha in net.alphas:
        alpha.data.normal_()
    choices = net.argmax()
    arch = Arch.from_json(net.member(choices).to_json())
    assert arch == net.member(choices)
    assert arch.meta["choices"] == [net.choices[k][i] for k, i in enumerate(choices)]
    assert set(arch.meta["choices"]) <= set(choice_names())
    member = net.member_net(choices)
    rebuilt = Net(arch)
    rebuilt.load_state_dict(member.state_dict())
    net.use(choices)
    net.eval()
    rebuilt.eval()
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(net(x), rebuilt(x), atol=1e-5)
    assert len(lower(arch)) > 0


def test_path_modules_are_the_shared_layers_and_the_active_candidates():
    net = SuperNet(SPACE)
    picks = net.sample_one()
    path = {id(m) for m in net.path_modules()}
    for op, pick in zip(net.mixed, picks):
        for i, candidate in enumerate(op.candidates):
            assert (id(candidate) in path) == (i == pick)
    assert id(net.blocks[0]) in path
