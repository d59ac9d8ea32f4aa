"""Attention kernel options: binary Q/K codes (popcount) and log2-quantized probabilities."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.ir._build import Numerics, build_graph
from vitaccel.models import ViTConfig, build_model
from vitaccel.sim import REFERENCE, SIM, SimContext, run_reference, simulate
from vitaccel.units import shiftadd

CFG = ViTConfig(
    name="attn-kernels", img_size=(8, 8), patch_size=2, in_chans=1, embed_dim=8, depth=1,
    num_heads=2, mlp_hidden=12, num_classes=3, mean=(0.5,), std=(1.0,),
)


def _graph(**numerics):
    torch.manual_seed(0)
    model = build_model(CFG)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.15)
    return model.eval(), build_graph(model.eval(), "edge-moe", numerics=Numerics(**numerics))


@pytest.fixture(scope="module")
def both():
    return _graph(qk_kernel="binary", av_kernel="log2", log2_min_exp=-7)


def test_attrs_and_bad_numerics(both):
    _, g = both
    a = g["blocks.0.attn"].attrs
    assert (a["qk_kernel"], a["av_kernel"], a["log2_min_exp"], a["binary_shift"]) == \
        ("binary", "log2", -7, -1)  # head_dim 4: 1/sqrt(4) = 2**-1
    assert _graph()[1]["blocks.0.attn"].attrs["qk_kernel"] == "mac"
    with pytest.raises(UsageError, match="av_kernel"):
        Numerics(av_kernel="shift")


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_kernels_equal_the_shiftadd_primitives(both, seed):
    _, g = both
    node = g["blocks.0.attn"]
    a_t = FixedType.parse("ap_fixed<32,10>")
    qkv = a_t.quantize(np.random.default_rng(seed).normal(0, 1.5, size=(2, 17, 24)))
    got = SIM["attention"](node, [qkv], [a_t], SimContext())
    q, k, v = (qkv.reshape(2, 17, 3, 2, 4).transpose(2, 0, 3, 1, 4))
    c = shiftadd.binary_scores(shiftadd.binary_codes(q), shiftadd.binary_codes(k))
    score_t = node.attrs["score_t"]
    scores = c << (score_t.frac_bits - 1)  # c * 2**-1, exact in score_t
    sm = node.attrs["softmax"]
    probs = sm.forward(scores, score_t)
    exps = shiftadd.log2_quantize_probs(probs, sm.out_t, -7)
    ctx = shiftadd.shift_av(exps, v, a_t, node.attrs["acc_t"], term_t=node.attrs["product_t"])
    want = node.fmt.cast(ctx.transpose(0, 2, 1, 3).reshape(2, 17, 8), node.attrs["acc_t"])
    np.testing.assert_array_equal(got, want)


def test_float_reference_and_simulation(both):
    model, g = both
    node = g["blocks.0.attn"]
    rng = np.random.default_rng(3)
    qkv = rng.normal(0, 1.0, size=(1, 17, 24))
    ref = REFERENCE["attention"](node, [qkv], 0)
    q, k, v = qkv.reshape(1, 17, 3, 2, 4).transpose(2, 0, 3, 1, 4)
    cq = np.where(q >= q.mean(axis=-2, keepdims=True), 1.0, -1.0)
    ck = np.where(k >= k.mean(axis=-2, keepdims=True), 1.0, -1.0)
    s = cq @ ck.transpose(0, 1, 3, 2) / 2
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    e = np.round(np.log2(p))
    p2 = np.where(e >= -7, 2.0**e, 0.0)
    want = (p2 @ v).transpose(0, 2, 1, 3).reshape(1, 17, 8)
    np.testing.assert_allclose(ref, want, rtol=1e-12, atol=1e-12)
    x = rng.integers(0, 256, size=(3, 1, 8, 8)) / 256.0
    sim = simulate(g, x).output
    flt = run_reference(g, x)["head"]
    assert np.max(np.abs(sim - flt)) < 0.05 * max(1.0, np.max(np.abs(flt)))
    dense = dataclasses.replace(node, attrs={**node.attrs, "qk_kernel": "mac",
                                             "av_kernel": "mac"})
    assert not np.allclose(REFERENCE["attention"](dense, [qkv], 0), ref)
