"""The binary-gate gradient rule of ProxylessNAS, as a pure function.

With binary gates ``g`` standing for the path weights ``p = softmax(alpha)`` (the
BinaryConnect trick), ``dL/dalpha_i = sum_j dL/dg_j * dp_j/dalpha_i`` and the softmax
Jacobian is ``dp_j/dalpha_i = p_j (delta_ij - p_i)``. With two sampled paths the sums
run over the pair and ``p`` is the softmax of the pair's two logits.
"""
from __future__ import annotations

import torch


def two_path_alpha_grad(logits: torch.Tensor, gate_grads: torch.Tensor) -> torch.Tensor:
    """``dL/dalpha`` of the sampled paths from their logits and their gates' gradients."""
    probs = torch.softmax(logits.detach(), dim=0)
    jacobian = torch.diag(probs) - torch.outer(probs, probs)  # [j, i] = p_j (delta_ij - p_i)
    return jacobian.T @ gate_grads.detach()
