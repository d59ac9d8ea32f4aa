"""Mixture-of-experts MLP (M^3ViT / Edge-MoE routing)."""

from __future__ import annotations

import torch
from torch import nn

from vitaccel.errors import UsageError
from vitaccel.models._layers import Mlp

__all__ = ["MoE", "top_k_route"]


def top_k_route(probs: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Select the ``k`` largest gate probabilities per row, ties to the lower expert index.

    Parameters
    ----------
    probs : Tensor, shape (N, E)
        Gate probabilities (softmax over all ``E`` experts).
    k : int
        Experts per row.

    Returns
    -------
    experts : LongTensor, shape (N, k)
        Selected expert indices, by decreasing probability (equal probabilities: lower index
        first).
    weights : Tensor, shape (N, k)
        The selected probabilities, not renormalised.
    """
    # A stable descending sort keeps equal values in index order, which is the tie rule.
    weights, experts = torch.sort(probs, dim=-1, descending=True, stable=True)
    return experts[:, :k], weights[:, :k]


class MoE(nn.Module):
    """Task-gated mixture of expert MLPs.

    Every token is routed by ``gates[task]`` (``Linear(D, E)``): ``p = softmax(gate(x))`` over all
    experts, the top-k experts are kept with their unrenormalised probabilities, and
    ``out = sum_e p_e * experts[e](x)``. Tokens are gathered per expert, processed, and scattered
    back (the Edge-MoE patch-reordering order).
    """

    def __init__(
        self, dim: int, num_experts: int, hidden: int, top_k: int, num_tasks: int,
        gate_bias: bool = True,
    ) -> None:
        super().__init__()
        self.top_k = top_k
        self.gates = nn.ModuleList(
            nn.Linear(dim, num_experts, bias=gate_bias) for _ in range(num_tasks)
        )
        self.experts = nn.ModuleList(Mlp(dim, hidden) for _ in range(num_experts))

    @property
    def num_experts(self) -> int:
        return len(self.experts)

    def gate_probs(self, x: torch.Tensor, task: int) -> torch.Tensor:
        """Softmax gate probabilities ``(..., E)`` of ``task`` for tokens ``x`` ``(..., D)``."""
        if not 0 <= task < len(self.gates):
            raise UsageError(f"task: expected 0..{len(self.gates) - 1}, got {task}")
        return self.gates[task](x).softmax(dim=-1)

    def route(self, x: torch.Tensor, task: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Routing of tokens ``x`` ``(..., D)``: ``(experts, weights)``, each ``(..., top_k)``."""
        probs = self.gate_probs(x, task)
        experts, weights = top_k_route(probs.reshape(-1, probs.shape[-1]), self.top_k)
        shape = (*x.shape[:-1], self.top_k)
        return experts.reshape(shape), weights.reshape(shape)

    def forward(self, x: torch.Tensor, task: int = 0) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        experts, weights = self.route(flat, task)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            rows, slot = torch.nonzero(experts == e, as_tuple=True)
            if rows.numel() == 0:
                continue
            y = expert(flat[rows]) * weights[rows, slot].unsqueeze(-1)
            out = out.index_add(0, rows, y)
        return out.reshape(x.shape)
