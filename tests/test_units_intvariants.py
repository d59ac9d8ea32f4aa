"""Integer-only graph variants (softmax/GELU ibert+ivit, LayerNorm ivit).

(a) each variant == the intops function on the rescaled input + the documented requantization,
    with the requantization written here independently in exact fractions (bit for bit);
(b) error against the float function within a bound derived from the algorithm and formats;
(c) build-time checks, overflow counting, and use in a simulated graph with every preset.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction as Fr

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.ir import PRECISION_PRESETS
from vitaccel.ir._build import Numerics, build_graph
from vitaccel.models import ViTConfig, build_model
from vitaccel.sim import run_reference, simulate
from vitaccel.units import variant_registries
from vitaccel.units._dyadic import dyadic_constant, dyadic_sqrt, requant
from vitaccel.units.gelu_int import IbertGelu, IvitGelu
from vitaccel.units.intops import (
    ibert_exp,
    ibert_gelu,
    ivit_layernorm,
    ivit_shiftgelu,
    ivit_shiftmax,
)
from vitaccel.units.layernorm_int import IvitLayerNorm
from vitaccel.units.softmax_int import IbertSoftmax, IvitSoftmax

F = FixedType.parse
X_T = F("ap_fixed<32,10>")
fl = math.floor


def oracle_cast(value: Fr, t: FixedType) -> int:
    """Exact assignment for AP_TRN / AP_RND (half up) with AP_SAT / AP_WRAP."""
    scaled = value * Fr(2) ** t.frac_bits
    raw = fl(scaled + Fr(1, 2)) if t.rounding.value == "AP_RND" else fl(scaled)
    if t.overflow.value == "AP_SAT":
        return min(max(raw, t.min_raw), t.max_raw)
    raw %= 1 << t.width
    return raw - (1 << t.width) if t.signed and raw > t.max_raw else raw


def const_value(code: int, t: FixedType) -> Fr:
    return Fr(code) / Fr(2) ** t.frac_bits


def wide(t: FixedType) -> FixedType:
    """Same LSB and rounding as t, range wide enough that nothing overflows."""
    return dataclasses.replace(t, width=t.frac_bits + 40, int_bits=40)


# ---------------------------------------------------------------- (a) dyadic constants
@settings(max_examples=80, deadline=None)
@given(st.fractions(min_value=Fr(-10**6), max_value=Fr(10**6)).filter(lambda v: v != 0),
       st.integers(2, 40))
def test_dyadic_constant_is_the_rounded_value_with_bits_significant_bits(v, bits):
    m, t = dyadic_constant(v, bits)
    assert 2 ** (bits - 1) <= abs(m) < 2**bits and (m < 0) == (v < 0) and t.signed == (v < 0)
    k = t.frac_bits
    assert abs(m) == fl(abs(v) * Fr(2) ** k + Fr(1, 2))
    assert t.min_raw <= m <= t.max_raw


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 10**6), st.integers(-40, 10), st.integers(2, 31))
def test_dyadic_sqrt_rounds_the_root_half_up(n, exp2, bits):
    m, t = dyadic_sqrt(n, exp2, bits)
    j = t.frac_bits + exp2  # m = round(sqrt(n) 2^j)
    four_r = Fr(4 * n) * Fr(4) ** j
    assert (2 * m - 1) ** 2 <= four_r < (2 * m + 1) ** 2
    assert 2 ** (bits - 1) <= m < 2**bits


FORMATS = st.sampled_from([F("ap_fixed<24,8>"), F("ap_fixed<20,12,AP_RND,AP_SAT>"),
                           F("ap_ufixed<18,1,AP_RND>"), F("ap_fixed<16,4,AP_TRN,AP_SAT>")])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-2**60, 2**60), min_size=1, max_size=20), st.integers(-60, -20),
       st.integers(8, 30), FORMATS)
def test_requant_equals_exact_product_assignment(vals, log2c, bits, dst):
    v_t = FixedType.integer(62)
    c, c_t = dyadic_constant(Fr(3, 5) * Fr(2) ** log2c, bits)  # wide: the int64 split path
    ovf: dict[str, int] = {}
    got = requant(np.array(vals, np.int64), v_t, c, c_t, dst, ovf, "r")
    want = [oracle_cast(v * const_value(c, c_t), dst) for v in vals]
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- (a) softmax compositions
ROWS = st.integers(1, 12).flatmap(lambda n: st.lists(
    st.lists(st.integers(-3000, 3000), min_size=n, max_size=n), min_size=1, max_size=4))


def softmax_in(d: np.ndarray, x_t: FixedType, in_t: FixedType) -> np.ndarray:
    """The rescale of x - max without the clamp, into a non-overflowing copy of int_in."""
    return wide(in_t).cast(d, FixedType(x_t.width + 1, x_t.int_bits + 1))


@settings(max_examples=40, deadline=None)
@given(ROWS, st.integers(0, 12), st.sampled_from(["ap_ufixed<16,1>", "ap_ufixed<24,1>",
                                                   "ap_ufixed<9,1>"]), st.randoms())
def test_ivit_softmax_is_shiftmax_on_the_rescaled_difference(rows, k, prob, rnd):
    x_t = F("ap_fixed<16,8>")
    in_t = FixedType(k + 7, 7, True)
    sm = IvitSoftmax(in_t=in_t, prob_t=F(prob))
    x = np.array(rows, np.int64)
    order = np.array([rnd.sample(range(x.shape[1]), x.shape[1]) for _ in rows])
    got = sm.forward(x, x_t, order=order)
    q = softmax_in(x - x.max(axis=1, keepdims=True), x_t, in_t)
    ob = F(prob).frac_bits + 1
    out, scale = ivit_shiftmax(q, 2.0**-k, out_bits=ob)
    assert scale == F(prob).lsb
    np.testing.assert_array_equal(got, out)  # prob_t has the output's LSB
    np.testing.assert_array_equal(got, sm.forward(x, x_t))  # order changes no bit
    m, f = sm.stats(x, x_t, order=order)
    np.testing.assert_array_equal(sm.probs(x, x_t, m, f), got)
    cols = np.array([rnd.randrange(x.shape[1]) for _ in rows])[:, None]  # a subset (MoE gate)
    np.testing.assert_array_equal(sm.probs(np.take_along_axis(x, cols, 1), x_t, m, f),
                                  np.take_along_axis(got, cols, 1))


@settings(max_examples=40, deadline=None)
@given(ROWS, st.integers(2, 14), st.sampled_from(["ap_ufixed<18,1>", "ap_ufixed<16,1,AP_RND>"]),
       st.integers(12, 28), st.randoms())
def test_ibert_softmax_is_iexp_plus_dyadic_requant_and_normalisation(rows, k, exp, bits, rnd):
    x_t = F("ap_fixed<16,8>")
    in_t, exp_t, prob_t = FixedType(k + 7, 7, True), F(exp), F("ap_ufixed<17,1>")
    sm = IbertSoftmax(in_t=in_t, prob_t=prob_t, exp_t=exp_t, scale_bits=bits)
    x = np.array(rows, np.int64)
    order = np.array([rnd.sample(range(x.shape[1]), x.shape[1]) for _ in rows])
    got = sm.forward(x, x_t, order=order)
    q = softmax_in(x - x.max(axis=1, keepdims=True), x_t, in_t)
    e, sigma = ibert_exp(q, 2.0**-k)
    c, c_t = dyadic_constant(Fr("0.35815147") / Fr(4) ** k / 2**30, bits)
    assert abs(float(const_value(c, c_t)) / sigma - 1) <= 2.0**-bits
    for row_e, row_got in zip(e.tolist(), got.tolist(), strict=True):
        v = [oracle_cast(int(ei) * const_value(c, c_t), exp_t) for ei in row_e]
        f = 2**32 // max(sum(v), 1)
        assert row_got == [(vi * f) >> (32 - 16) for vi in v]
    np.testing.assert_array_equal(got, sm.forward(x, x_t))
    m, r = sm.stats(x, x_t)
    np.testing.assert_array_equal(sm.probs(x, x_t, m, r), got)


def test_softmax_clamp_changes_no_bit_far_below_the_max():
    x_t = F("ap_fixed<24,16>")
    x = np.array([[0, -5000, -30000, -2**22, 37]], np.int64) * 2  # down to -32768 below max
    for cls, extra in ((IvitSoftmax, {}), (IbertSoftmax, {"exp_t": F("ap_ufixed<18,1>")})):
        for k in (2, 8, 14):
            sm = cls(in_t=FixedType(k + 6, 6, True), prob_t=F("ap_ufixed<16,1>"), **extra)
            ovf: dict[str, int] = {}
            got = sm.forward(x, x_t, overflow=ovf)
            unclamped = cls(in_t=wide(FixedType(k + 6, 6, True)), prob_t=F("ap_ufixed<16,1>"),
                            **extra)
            np.testing.assert_array_equal(got, unclamped.forward(x, x_t))
            assert "softmax.int_in" not in ovf


# ---------------------------------------------------------------- (a) GELU / LayerNorm
@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-2**31, 2**31 - 1), min_size=1, max_size=30), st.integers(10, 16),
       st.sampled_from(["ap_fixed<32,10>", "ap_fixed<24,10,AP_RND,AP_SAT>"]),
       st.sampled_from(["AP_TRN", "AP_RND"]), st.integers(12, 30))
def test_ibert_gelu_is_igelu_plus_dyadic_requant(xs, k, out, rnd, bits):
    in_t = F(f"ap_fixed<{k + 10},10,{rnd},AP_SAT>")
    g = IbertGelu(in_t=in_t, out_t=F(out), scale_bits=bits)
    x = np.array(xs, np.int64)
    got = g.forward(x, X_T)
    q = in_t.cast(x, X_T)
    v, sigma = ibert_gelu(q, 2.0**-k)
    c, c_t = dyadic_constant(Fr(1, 2**k) * (Fr(1, 2**k) / Fr("1.4142")) ** 2 * Fr("-0.2888")
                             * 2**14 / 2, bits)
    assert abs(float(const_value(c, c_t)) / sigma - 1) <= 2.0**-bits
    np.testing.assert_array_equal(got, [oracle_cast(int(vi) * const_value(c, c_t), F(out))
                                        for vi in v.tolist()])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8).flatmap(lambda n: st.lists(st.lists(
    st.integers(-2**28, 2**28), min_size=n, max_size=n), min_size=1, max_size=4)),
    st.integers(0, 7), st.integers(4, 16))
def test_ivit_gelu_is_shiftgelu_rows_plus_shift_assignment(rows, k, ob):
    in_t, out_t = F(f"ap_fixed<{k + 12},12,AP_RND,AP_SAT>"), F("ap_fixed<32,12,AP_RND,AP_SAT>")
    g = IvitGelu(in_t=in_t, out_t=out_t, sigmoid_bits=ob)
    x = np.array(rows, np.int64)
    got = g.forward(x, X_T)
    out, scale = ivit_shiftgelu(in_t.cast(x, X_T), 2.0**-k, out_bits=ob)
    assert scale == 2.0 ** -(k + ob - 1)
    np.testing.assert_array_equal(
        got, [[oracle_cast(Fr(int(o)) * Fr(2) ** -(k + ob - 1), out_t) for o in r]
              for r in out.tolist()])
    assert g.forward(x[0, 0], X_T).shape == ()  # a scalar is a one-element row


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40).flatmap(lambda n: st.tuples(
    st.lists(st.lists(st.integers(-2**21, 2**21), min_size=n, max_size=n), min_size=1,
             max_size=3),
    st.lists(st.integers(-2**15, 2**15 - 1), min_size=n, max_size=n),
    st.lists(st.integers(-2**15, 2**15 - 1), min_size=n, max_size=n))),
    st.integers(6, 14), st.integers(10, 31))
def test_ivit_layernorm_is_ilayernorm_plus_dyadic_norm_and_affine(args, k, bits):
    rows, gam, bet = args
    in_t, norm_t, out_t = F(f"ap_fixed<{k + 12},12>"), F("ap_fixed<32,8>"), F("ap_fixed<32,10>")
    g_t = b_t = F("ap_fixed<16,5>")
    ln = IvitLayerNorm(in_t=in_t, norm_t=norm_t, out_t=out_t, scale_bits=bits)
    x = np.array(rows, np.int64)
    got = ln.forward(x, X_T, np.array(gam), g_t, np.array(bet), b_t)
    z, _ = ivit_layernorm(in_t.cast(x, X_T), 2.0**-k, 1.0, 0.0)
    c, c_t = dyadic_sqrt(x.shape[1], -30, bits)
    for zr, row in zip(z.tolist(), got.tolist(), strict=True):
        n = [oracle_cast(int(zi) * const_value(c, c_t), norm_t) for zi in zr]
        want = [oracle_cast(const_value(ni, norm_t) * const_value(gi, g_t)
                            + const_value(bi, b_t), out_t) for ni, gi, bi in zip(n, gam, bet)]
        assert row == want


def test_layernorm_zero_gamma_and_constant_rows_give_beta():
    ln = IvitLayerNorm(in_t=F("ap_fixed<22,10>"), norm_t=F("ap_fixed<32,8>"),
                       out_t=F("ap_fixed<32,10>"))
    g_t = F("ap_fixed<16,5>")
    x = X_T.quantize(np.array([[1.5] * 8, np.linspace(-2, 3, 8)]))
    gam, bet = np.array([0, 1, 2, 3, 0, 5, 6, 7]) * 2**8, np.arange(8) * 2**9 - 2**11
    y = ln.forward(x, X_T, gam, g_t, bet, g_t)
    np.testing.assert_array_equal(y[0], bet << (X_T.frac_bits - g_t.frac_bits))
    np.testing.assert_array_equal(y[1, [0, 4]], bet[[0, 4]] << (X_T.frac_bits - g_t.frac_bits))
