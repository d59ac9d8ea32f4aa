"""Mixture-of-experts routing: gathered per-expert computation, tie rule, task gates."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.models import MoE, build_model, top_k_route


def _moe(seed: int = 0, experts: int = 5, k: int = 2, tasks: int = 2) -> MoE:
    torch.manual_seed(seed)
    m = MoE(8, experts, 6, k, tasks).double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p))
    return m


def _dense_masked(m: MoE, x: torch.Tensor, task: int) -> torch.Tensor:
    """Every expert on every token, weighted by a mask of the top-k gate probabilities."""
    probs = torch.softmax(x @ m.gates[task].weight.T + m.gates[task].bias, dim=-1)
    e = probs.shape[-1]
    # rank of each expert: the number of experts that beat it (higher prob, or equal and lower
    # index); the top-k are ranks < k
    beats = (probs[..., None, :] > probs[..., :, None]) | (
        (probs[..., None, :] == probs[..., :, None])
        & (torch.arange(e)[None, :] < torch.arange(e)[:, None])
    )
    mask = beats.sum(-1) < m.top_k
    outs = torch.stack([expert(x) for expert in m.experts], dim=-2)  # (..., E, D)
    return ((probs * mask)[..., None] * outs).sum(-2)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 4), task=st.integers(0, 1),
       tokens=st.integers(1, 9))
def test_gathered_equals_dense_masked(seed: int, k: int, task: int, tokens: int) -> None:
    m = _moe(seed, experts=4, k=k)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, tokens, 8, dtype=torch.float64, generator=gen)
    torch.testing.assert_close(m(x, task), _dense_masked(m, x, task), rtol=1e-12, atol=1e-12)


def test_probabilities_not_renormalised() -> None:
    m = _moe()
    x = torch.randn(1, 4, 8, dtype=torch.float64)
    _, w = m.route(x, 0)
    assert torch.all(w.sum(-1) < 1.0)
    full = torch.softmax(m.gates[0](x), -1).sort(-1, descending=True).values[..., :2]
    torch.testing.assert_close(w, full)


def test_ties_go_to_lower_index() -> None:
    probs = torch.tensor(
        [[0.125, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25], [0.375, 0.125, 0.375, 0.125],
         [0.0625, 0.125, 0.5, 0.125]]
    )
    experts, weights = top_k_route(probs, 2)
    assert experts.tolist() == [[1, 2], [0, 1], [0, 2], [2, 1]]
    assert weights.tolist() == [[0.25, 0.25], [0.25, 0.25], [0.375, 0.375], [0.5, 0.125]]


def test_tied_gate_logits_route_to_lower_experts() -> None:
    m = _moe(experts=6, k=2)
    with torch.no_grad():
        m.gates[0].weight.zero_()
        m.gates[0].bias.copy_(torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 0.0]))
    experts, _ = m.route(torch.randn(3, 8, dtype=torch.float64), 0)
    assert experts.tolist() == [[1, 3]] * 3


def test_tasks_use_their_own_gate() -> None:
    m = _moe()
    x = torch.randn(1, 6, 8, dtype=torch.float64)
    with torch.no_grad():
        m.gates[1].weight.copy_(m.gates[0].weight)
        m.gates[1].bias.copy_(m.gates[0].bias)
        torch.testing.assert_close(m(x, 0), m(x, 1))
        m.gates[1].bias.add_(torch.arange(5.0) * 3)
        assert not torch.allclose(m(x, 0), m(x, 1))


def test_class_token_is_routed_and_model_uses_task() -> None:
    model = build_model("digits-moe").double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        assert not torch.allclose(model(x, 0), model(x, 1))
        h = model.blocks[1].norm2(model.blocks[0](model.embed(x)))
        experts, weights = model.blocks[1].mlp.route(h, 1)
        out = model.blocks[1].mlp(h, 1)
    assert experts.shape == (2, model.cfg.num_tokens, 2)
    cls_want = sum(
        weights[:, 0, j, None] * torch.stack(
            [model.blocks[1].mlp.experts[int(e)](h[b, 0]) for b, e in enumerate(experts[:, 0, j])]
        )
        for j in range(2)
    )
    torch.testing.assert_close(out[:, 0], cls_want)


def test_bad_task() -> None:
    m = _moe()
    with pytest.raises(ValueError, match="task"):
        m(torch.zeros(1, 8, dtype=torch.float64), 2)
