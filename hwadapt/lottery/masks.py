"""Weight masks: which weights of a network are prunable, how sparse a mask is, and
keeping pruned weights at exactly zero while an optimizer trains the rest.

A mask maps a parameter name (``blocks.3.conv1.0.weight``) to a boolean tensor of the
parameter's shape; True keeps the weight. Only convolution weights are prunable by
default: BN scales and shifts and biases never are (as in the lottery-ticket anchors),
and neither is the classifier. The classifier holds 0.2% of ResNet-20's weights (640 of
270k) yet every class score goes through it, and it costs nothing at inference, so
pruning it buys no sparsity worth having and risks dropping a class's only inputs.
Supermasks, which train no weight at all, mask the classifier too
(``classifier=True``): there the mask is the only thing that can shape the read-out.
"""
from __future__ import annotations

import torch
from torch import nn

Masks = dict[str, torch.Tensor]


def prunable(net: nn.Module, classifier: bool = False) -> dict[str, nn.Parameter]:
    """The prunable weights of ``net`` by parameter name: every convolution's weight, and
    the last linear layer's when ``classifier``."""
    found = {f"{name}.weight": module.weight for name, module in net.named_modules()
             if isinstance(module, nn.Conv2d)}
    if classifier:
        linear = [(name, module) for name, module in net.named_modules() if isinstance(module, nn.Linear)]
        if linear:
            name, module = linear[-1]
            found[f"{name}.weight"] = module.weight
    return found


def dense_masks(net: nn.Module, classifier: bool = False) -> Masks:
    """A mask keeping every prunable weight."""
    return {name: torch.ones_like(weight, dtype=torch.bool) for name, weight in prunable(net, classifier).items()}


def kept(masks: Masks) -> int:
    return int(sum(int(mask.sum()) for mask in masks.values()))


def total(masks: Masks) -> int:
    return int(sum(mask.numel() for mask in masks.values()))


def sparsity(masks: Masks) -> float:
    """The fraction of prunable weights the masks remove."""
    return 1.0 - kept(masks) / max(total(masks), 1)


def layer_sparsity(masks: Masks) -> dict[str, float]:
    return {name: 1.0 - float(mask.float().mean()) for name, mask in masks.items()}


@torch.no_grad()
def apply_masks(net: nn.Module, masks: Masks) -> None:
    """Zero the pruned weights of ``net`` in place."""
    params = dict(net.named_parameters())
    for name, mask in masks.items():
        params[name].mul_(mask.to(params[name].device))


def masks_on(masks: Masks, device: torch.device) -> Masks:
    return {name: mask.to(device) for name, mask in masks.items()}


def hold_masks(optimizer: torch.optim.Optimizer, net: nn.Module, masks: Masks):
    """Keep the pruned weights of ``net`` at exactly zero through ``optimizer``'s steps.

    Zeroing the weights after each step (open_lth's way) leaves the optimizer's own state
    moving: momentum built up before pruning, and weight decay, would keep pushing pruned
    weights between the steps, and a resumed or shared optimizer would carry them along.
    Here, before every step, the gradients and momentum buffers of pruned weights are
    zeroed; with the weight itself zero, SGD's weight decay (``wd * w``) and its Nesterov
    update are zero too, so the weight cannot move. Returns the hook's handle."""
    params = dict(net.named_parameters())
    held = [(params[name], mask.to(params[name].device)) for name, mask in masks.items()]
    apply_masks(net, masks)

    @torch.no_grad()
    def before_step(opt: torch.optim.Optimizer, *_args) -> None:
        for param, mask in held:
            if param.grad is not None:
                param.grad.mul_(mask)
            buffer = opt.state.get(param, {}).get("momentum_buffer")
            if buffer is not None:
                buffer.mul_(mask)

    return optimizer.register_step_pre_hook(before_step)
