"""Shift/add linear layers and conversion; early-exit heads and the exit rule."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.models import (
    PRESETS,
    ExitConfig,
    ShiftLinear,
    build_model,
    exit_macs,
    exit_report,
    pow2_quantize,
    to_shiftadd,
)
from vitaccel.models._exits import exit_score


def _pow2_oracle(w: float, p_min: int, p_max: int) -> float:
    if abs(w) < 2.0 ** (p_min - 1):
        return 0.0
    # nearest exponent in the log domain, by exact comparison of |w|^2 with 2^(2p+1)
    p = math.frexp(abs(w))[1] - 1  # 2^p <= |w| < 2^(p+1)
    if abs(w) ** 2 >= 2.0 ** (2 * p + 1):
        p += 1
    return math.copysign(2.0 ** min(max(p, p_min), p_max), w)


@settings(max_examples=200, deadline=None)
@given(w=st.floats(-8.0, 8.0, allow_nan=False, width=32), p_min=st.integers(-10, -1),
       span=st.integers(0, 6))
def test_pow2_quantize_matches_oracle(w: float, p_min: int, span: int) -> None:
    sign, exp = pow2_quantize(torch.tensor([w], dtype=torch.float32), p_min, p_min + span)
    got = float(sign[0]) * 2.0 ** int(exp[0])
    assert got == _pow2_oracle(w, p_min, p_min + span)
    assert p_min <= int(exp[0]) <= p_min + span


def test_pow2_quantize_is_idempotent_and_zero_rule() -> None:
    w = torch.tensor([0.0, 2**-9, 2**-9 * 1.001, -0.75, 0.5, 1.0, 4.0, -1e-6])
    sign, exp = pow2_quantize(w, -8, 0)
    q = sign.double() * torch.pow(2.0, exp.double())
    assert q.tolist() == [0.0, 2**-8, 2**-8, -1.0, 0.5, 1.0, 1.0, -0.0]
    s2, e2 = pow2_quantize(q, -8, 0)
    assert torch.equal(s2.double() * torch.pow(2.0, e2.double()), q)


def test_shift_linear_forward_and_straight_through_gradient() -> None:
    lin = ShiftLinear(4, 3, p_min=-6, p_max=0)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.3, -0.2, 0.05, 0.9]] * 3))
    x = torch.randn(5, 4, requires_grad=True)
    out = lin(x)
    torch.testing.assert_close(out, F.linear(x, lin.quantized_weight(), lin.bias))
    out.sum().backward()
    torch.testing.assert_close(lin.weight.grad, x.sum(0).expand(3, 4).detach())
    lin.project_()
    assert set(lin.weight.abs().unique().tolist()) <= {2.0**p for p in range(-6, 1)}


@pytest.mark.parametrize("layers", ["mlp", "all_linear"])
def test_to_shiftadd_converts_selected_layers(layers: str) -> None:
    torch.manual_seed(0)
    model = build_model("digits-moe").eval()
    conv = to_shiftadd(model, -8, 0, layers).eval()
    assert conv.cfg.shiftadd is not None and model.cfg.shiftadd is None
    blk0, blk1 = conv.blocks[0], conv.blocks[1]
    assert isinstance(blk0.mlp.fc1, ShiftLinear)
    assert isinstance(blk1.mlp.experts[3].fc2, ShiftLinear)
    assert isinstance(blk0.attn.qkv, ShiftLinear) == (layers == "all_linear")
    assert not isinstance(blk1.mlp.gates[0], ShiftLinear) and not isinstance(conv.head, ShiftLinear)
    assert not isinstance(model.blocks[0].mlp.fc1, ShiftLinear)
    w = blk0.mlp.fc1.weight
    sign, exp = pow2_quantize(model.blocks[0].mlp.fc1.weight, -8, 0)
    torch.testing.assert_close(w, sign.float() * torch.pow(2.0, exp.float()), rtol=0, atol=0)
    torch.testing.assert_close(conv.head.weight, model.head.weight, rtol=0, atol=0)


def _random_exit_model(head: str, rule: str = "max_prob", threshold: float = 0.5):
    cfg = dataclasses.replace(
        PRESETS["digits-early-exit"], exits=ExitConfig((0, 2), head, rule, threshold)
    )
    torch.manual_seed(1)
    model = build_model(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return model


@pytest.mark.parametrize("head", ["linear", "local", "global"])
def test_forward_exits_picks_first_firing_head(head: str) -> None:
    model = _random_exit_model(head, threshold=0.4)
    x = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        outs = model.forward_all_exits(x)
        logits, index = model.forward_exits(x)
        torch.testing.assert_close(outs[-1], model(x))
    assert len(outs) == 3
    for b in range(64):
        fired = [j for j in range(2) if outs[j][b].softmax(-1).max() >= 0.4]
        want = fired[0] if fired else 2
        assert int(index[b]) == want
        torch.testing.assert_close(logits[b], outs[want][b])


def test_linear_exit_head_is_cls_plus_patch_mean() -> None:
    model = _random_exit_model("linear")
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        t = model.blocks[0](model.embed(x))
        ex = model.exits[0]
        h = F.layer_norm(t, (32,), ex.norm.weight, ex.norm.bias, 1e-6)
        want = ex.head(h[:, 0] + h[:, 1:].mean(1))
        torch.testing.assert_close(model.forward_all_exits(x)[0], want)


def test_entropy_rule() -> None:
    logits = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    ent = exit_score(logits, "entropy")
    assert ent[1].item() == pytest.approx(math.log(3))
    assert ent[0].item() < 1e-3
    model = _random_exit_model("linear", rule="entropy", threshold=0.0)
    _, index = model.forward_exits(torch.rand(4, 1, 8, 8))
    assert index.tolist() == [2, 2, 2, 2]


def test_exit_report_counts_and_macs() -> None:
    model = _random_exit_model("local", threshold=0.3)
    x = np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32)
    y = np.zeros(40, dtype=np.int64)
    rep = exit_report(model, x, y)
    assert sum(rep.counts) == 40 and rep.exit_blocks == (0, 2, 3)
    macs = exit_macs(model.cfg)
    assert macs[0] < macs[1] < macs[2] and rep.macs_per_exit == macs
    assert min(macs) <= rep.mean_macs <= max(macs)
