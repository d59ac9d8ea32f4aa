"""Shift/add (power-of-two) linear layers in the graph and the simulator."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.fixed import FixedType, fixed_matmul
from vitaccel.ir._build import build_graph
from vitaccel.models import ShiftAddConfig, ViTConfig, build_model
from vitaccel.models._shiftadd import project_shift_weights
from vitaccel.sim import SIM, SimContext, run_reference, simulate

CFG = ViTConfig(
    name="shift-test", img_size=(8, 8), patch_size=4, in_chans=1, embed_dim=8, depth=2,
    num_heads=2, mlp_hidden=12, num_classes=3, mean=(0.5,), std=(1.0,),
    shiftadd=ShiftAddConfig(p_min=-6, p_max=0),
)


def random_model(cfg: ViTConfig = CFG, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.15)
    project_shift_weights(model)
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return random_model()


@pytest.fixture(scope="module")
def graph(model):
    return build_graph(model, "edge-moe")


def test_linears_carry_power_of_two_weights(graph, model):
    linears = [n for n in graph if n.op == "linear"]
    assert len(linears) == 8 and all(n.attrs["kernel"] == "shift" for n in linears)
    for node in linears:
        sign, exp = node.params["shift_sign"].raw, node.params["shift_exp"].raw
        w = node.params["weight"]
        np.testing.assert_array_equal(w.value, sign * np.exp2(exp.astype(float)))
        np.testing.assert_array_equal(w.value, w.ref)  # stored exactly
        assert node.attrs["product_t"] == FixedType.parse("ap_fixed<32,10>")  # shift.term
    s, e = model.blocks[0].attn.qkv.shift_params()
    qkv = graph["blocks.0.attn.qkv"]
    d = CFG.embed_dim
    np.testing.assert_array_equal(qkv.params["shift_sign"].raw, s.numpy())
    on = s.numpy() != 0
    folded = e.numpy() - np.where(np.arange(3 * d) < d, 1, 0)[:, None]  # q rows: 4**-0.5
    np.testing.assert_array_equal(qkv.params["shift_exp"].raw[on], folded[on])
    assert graph["head"].params["weight"].fmt == FixedType.parse("ap_fixed<16,2>")


def test_non_power_of_two_scale_keeps_the_mac_kernel():
    cfg = dataclasses.replace(CFG, embed_dim=16, num_heads=2)  # head_dim 8: scale 8**-0.5
    g = build_graph(random_model(cfg), "edge-moe")
    assert g["blocks.0.attn.qkv"].attrs["kernel"] == "mac"
    assert g["blocks.0.attn.proj"].attrs["kernel"] == "shift"


def _term_oracle(x, x_t, sign, exp, term_t, acc_t, b, b_t):
    """Python-int oracle: each term floor(sign * x * 2**exp) at term_t's LSB, acc cast each add."""
    m, k = x.shape
    out = np.zeros((m, sign.shape[0]), dtype=np.int64)
    wide = FixedType(64, 64 - max(acc_t.frac_bits, term_t.frac_bits))
    f = wide.frac_bits
    for i in range(m):
        for n in range(sign.shape[0]):
            acc = int(acc_t.cast(np.array(b[n]), b_t))
            for j in range(k):
                shift = int(exp[n, j]) + term_t.frac_bits - x_t.frac_bits
                v = int(sign[n, j]) * int(x[i, j])
                term = v << shift if shift >= 0 else v >> -shift  # floor
                term = int(term_t.cast(np.array(term), term_t))
                total = (acc << (f - acc_t.frac_bits)) + (term << (f - term_t.frac_bits))
                acc = int(acc_t.cast(np.array(total), wide))
            out[i, n] = acc
    return out


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), coarse=st.booleans())
def test_shift_linear_node_equals_matmul_with_per_term_floor(graph, seed, coarse):
    node = graph["blocks.1.mlp.fc2"]
    if coarse:  # terms floored to 2**-4, saturating accumulator: every cast matters
        attrs = {**node.attrs, "product_t": FixedType.parse("ap_fixed<12,8>"),
                 "acc_t": FixedType.parse("ap_fixed<10,3,AP_TRN,AP_SAT>")}
        node = dataclasses.replace(node, attrs=attrs)
    rng = np.random.default_rng(seed)
    x_t = FixedType.parse("ap_fixed<16,6>")
    x = x_t.quantize(rng.normal(0, 4.0, size=(1, 3, 12)))
    res = np.zeros((1, 3, 8), dtype=np.int64)
    got_acc = SIM["linear"](dataclasses.replace(node, fmt=node.attrs["acc_t"],
                                                attrs={**node.attrs, "residual": False}),
                            [x, res], [x_t, x_t], SimContext())
    w, b = node.params["weight"], node.params["bias"]
    want, _ = fixed_matmul(x[0], x_t, w.raw.T, w.fmt, acc_t=node.attrs["acc_t"],
                           product_t=node.attrs["product_t"], bias_raw=b.raw, bias_t=b.fmt,
                           return_overflow=True)
    np.testing.assert_array_equal(got_acc[0], want)
    oracle = _term_oracle(x[0], x_t, node.params["shift_sign"].raw,
                          node.params["shift_exp"].raw, node.attrs["product_t"],
                          node.attrs["acc_t"], b.raw, b.fmt)
    np.testing.assert_array_equal(got_acc[0], oracle)


def test_float_reference_and_simulation_track_pytorch(graph, model):
    x = np.random.default_rng(2).integers(0, 256, size=(4, 1, 8, 8)) / 256.0
    with torch.no_grad():
        want = model.double()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_reference(graph, x)["head"], want, rtol=1e-9, atol=1e-9)
    sim = simulate(graph, x).output
    assert np.max(np.abs(sim - want)) < 1e-3
