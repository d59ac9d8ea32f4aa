"""Integer-only graph variants (softmax/GELU ibert+ivit, LayerNorm ivit).

(a) each variant == the intops function on the rescaled input + the documented requantization,
    with the requantization written here independently in exact fractions (bit for bit);
(b) error against the float function within a bound derived from the algorithm and formats;
(c) build-time checks, overflow counting and graphs: test_units_intvariants_graph.py.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction as Fr

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.fixed import FixedType
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
                            + const_value(bi, b_t), out_t)
                for ni, gi, bi in zip(n, gam, bet, strict=True)]
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


# ---------------------------------------------------------------- (b) error vs float
GELU_LIPSCHITZ = 1.129  # max |d/dx x Phi(x)| = 1.1289 (at x = sqrt(2))
CHORD = 1.0615  # max of (1 + r/2) / 2^r on r in (-1, 0] (the shift exponent's chord)
LOG2E = 1 / math.log(2)


def test_constants():
    x = np.linspace(-8, 8, 400001)
    phi = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    big_phi = 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    assert np.abs(big_phi + x * phi).max() <= GELU_LIPSCHITZ
    r = np.linspace(-1, 0, 200001)
    assert ((1 + r / 2) / 2**r).max() <= CHORD


def gelu(x):
    return x * 0.5 * (1 + np.vectorize(math.erf)(np.asarray(x) / math.sqrt(2)))


def test_ibert_gelu_error_bound_on_its_accurate_range():
    """|y - gelu(x)| <= LSB_out + |v sigma| 2^-bits (dyadic constant) + I-BERT's own bound
    |u|/2 (eta + eps_erf + arg) at u = q s (see test_units_intops) + 1.129 s (input floor)."""
    g = IbertGelu(in_t=F("ap_fixed<24,10>"), out_t=X_T)
    x = X_T.quantize(np.linspace(-6, 6, 24001))
    y = X_T.to_float(g.forward(x, X_T))
    k = 14
    s = 2.0**-k
    q = g.in_t.cast(x, X_T)
    v, sigma = ibert_gelu(q, s)
    u = q * s
    a, b = -0.2888, -1.769
    s1 = s / 1.4142
    sf = s1**2 * a * 2**14
    eta = 2 * abs(sf) + abs(a) * s1 * (2 * abs(b) + s1) + abs(a) * s1**2
    arg = 2 / math.sqrt(math.pi) * np.abs(u) * abs(1 / 1.4142 - 1 / math.sqrt(2))
    algo = np.abs(u) / 2 * (eta + 0.0964 + arg)
    bound = X_T.lsb + np.abs(v * sigma) * 2.0**-24 + algo + GELU_LIPSCHITZ * s
    err = np.abs(y - gelu(X_T.to_float(x)))
    assert np.all(err <= bound)
    assert err.max() < 0.025  # measured 0.0182


def _shift_weights(t_abs, s, big_l):
    """Bounds lo, hi on 2^(x' s / L) (1 + rho/2) / e^t (see test_units_intops)."""
    slope = np.maximum(abs(1.4375 / big_l - LOG2E), 0.0)
    delta = t_abs * slope + s / big_l
    return 2.0**-delta, CHORD * 2.0**delta


@pytest.mark.parametrize("k", [2, 3, 4])
def test_ivit_gelu_error_bound(k):
    """Rows with a maximum >= 0: I-ViT's bound at u = q s (test_units_intops) + the sigmoid form
    |u sigma(1.702u) - gelu(u)| <= 0.0205 + input rounding (RND: s/2) * 1.129 + LSB_out."""
    rng = np.random.default_rng(k)
    in_t = F(f"ap_fixed<{k + 10},10,AP_RND,AP_SAT>")
    g = IvitGelu(in_t=in_t, out_t=X_T)
    xf = rng.uniform(-4, 4, size=(300, 24))
    xf[:, 0] = np.abs(xf[:, 0])
    x = X_T.quantize(xf)
    y = X_T.to_float(g.forward(x, X_T))
    s = 2.0**-k
    sp = 1.702 * s
    x0 = math.floor(-1 / sp)
    big_l = -x0 * sp
    q = in_t.cast(x, X_T)
    u = q * s
    m = q.max(axis=1, keepdims=True)
    t, tm = (q - m) * sp, -m * sp
    sig = 1 / (1 + np.exp(-1.702 * u))
    lo_e, hi_e = _shift_weights(-t, sp, big_l)
    lo_m, hi_m = _shift_weights(np.abs(tm), sp, big_l)
    ratio = np.maximum(hi_e / lo_m, hi_m / lo_e)
    e_hi = 2.0**23 * -x0 * np.exp(t) * hi_e
    algo = np.abs(u) * (sig * (ratio - 1) + sig * ratio * 2.0**-31 + e_hi / 2**31 + 2.0**-7)
    grid = np.linspace(-8, 8, 160001)
    form = np.abs(grid / (1 + np.exp(-1.702 * grid)) - gelu(grid)).max()
    assert form < 0.0205
    bound = algo + 0.0205 + GELU_LIPSCHITZ * s / 2 + X_T.lsb
    err = np.abs(y - gelu(X_T.to_float(x)))
    assert np.all(err <= bound)
    # measured 0.24 / 0.14 / 0.18 at k = 2 / 3 / 4: input LSB vs the (2^31-1)/S floor, 8-bit sigmoid
    assert err.max() < 0.25


def _softmax(t):
    z = np.exp(t - t.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("k", [6, 8])
def test_ivit_softmax_error_bound(k):
    """I-ViT's Shiftmax bound at t = q s (test_units_intops; S < 2^31, |t| <= 9) plus the
    input floor (each difference within s: p changes by at most p (e^s - 1))."""
    rng = np.random.default_rng(k)
    x_t = F("ap_fixed<32,10>")
    sm = IvitSoftmax(in_t=F(f"ap_fixed<{k + 6},6>"), prob_t=F("ap_ufixed<16,1>"))
    x = x_t.quantize(rng.uniform(-4.4, 4.4, size=(200, 32)))
    p_hat = sm.out_t.to_float(sm.forward(x, x_t))
    s = 2.0**-k
    q = sm.in_t.cast(x - x.max(axis=1, keepdims=True), FixedType(33, 11))
    t = q * s
    p_q = _softmax(t)
    lo, hi = _shift_weights(-t, s, 1.0)
    ratio = hi.max(axis=1, keepdims=True) / lo.min(axis=1, keepdims=True)
    e_hi = 2.0 ** (15 + k) * np.exp(t) * hi
    assert np.all(e_hi.sum(axis=1) <= 2**31 - 1)
    p = _softmax(x_t.to_float(x))
    bound = (p_q * (ratio - 1) + p_q * ratio * 2.0**-31 + e_hi / 2**31 + 2.0**-15
             + p * (math.exp(s) - 1))
    err = np.abs(p_hat - p)
    assert np.all(err <= bound)
    assert err.max() < 0.02  # measured 0.012 (k=6), 0.015 (k=8)


@pytest.mark.parametrize("k", [6, 8, 12])
def test_ibert_softmax_error_bound(k):
    """p_hat vs softmax(x): i-exp's bound per element (test_units_intops: relative factor
    e^{z|L - ln 2|}(1 + eps_p) plus 2^-z a s (L + s)), the dyadic constant (2^-bits) and the
    floor into softmax.exp give |v_i - e^{t_i}| <= dev_i, so |v_i/V - p_i| <= (dev_i + p_i
    sum(dev)) / (E - sum(dev)); normalisation adds v/2^32 + 2^-ob; the input floor p (e^s - 1)."""
    rng = np.random.default_rng(k)
    x_t = F("ap_fixed<32,10>")
    exp_t = F("ap_ufixed<18,1>")
    sm = IbertSoftmax(in_t=F(f"ap_fixed<{k + 6},6>"), prob_t=F("ap_ufixed<16,1>"), exp_t=exp_t)
    x = x_t.quantize(rng.uniform(-6, 6, size=(200, 48)))
    p_hat = sm.out_t.to_float(sm.forward(x, x_t))
    s, a = 2.0**-k, 0.35815147
    q = sm.in_t.cast(x - x.max(axis=1, keepdims=True), FixedType(33, 11))
    t = q * s
    x0i = math.floor(-0.6931 / s)
    big_l = -x0i * s
    rho = np.linspace(-big_l, 0, 100001)
    eps_p = np.max(np.abs((a * rho**2 + 0.96963238 * rho + 1) / np.exp(rho) - 1)) + 1e-9
    z = q // x0i
    rel = np.exp(z * abs(big_l - math.log(2))) * (1 + eps_p) - 1
    absolute = 2.0**-z * a * s * (big_l + s)
    lsb, cb = exp_t.lsb, 2.0**-24
    ex = np.exp(t)
    dev = ex * (rel + cb * (1 + rel)) + absolute * (1 + cb) + lsb  # |v_i - e^{t_i}| <= dev_i
    total, dev_sum = ex.sum(axis=1, keepdims=True), dev.sum(axis=1, keepdims=True)
    assert np.all(total > dev_sum)
    p_q = ex / total
    v = ex + dev  # an upper bound on v_i (value)
    p = _softmax(x_t.to_float(x))
    bound = ((dev + p_q * dev_sum) / (total - dev_sum) + v / lsb / 2**32 + sm.out_t.lsb
             + p * (math.exp(s) - 1))
    err = np.abs(p_hat - p)
    assert np.all(err <= bound)
    assert err.max() < 6e-3  # measured 5.0e-3 (k=6), 1.1e-3 (k=8), 5.3e-4 (k=12)


@pytest.mark.parametrize("n", [32, 192])
def test_ivit_layernorm_error_bound(n):
    """|y - LN(x)| <= |g| (|n_q - LN(q s)| + (s/sigma)(1 + |LN|) (1 + 2 s/sigma)) + |g| LSB_norm
    + LSB_out: I-ViT's bound at q s (test_units_intops, 2^16 <= V <= 2^44) with the dyadic
    constant (2^-bits relative), the input floor (|dx| < s moves y by < s and sigma by < s)."""
    rng = np.random.default_rng(n)
    k = 12
    g_t = F("ap_fixed<16,5>")
    ln = IvitLayerNorm(in_t=F("ap_fixed<22,10>"), norm_t=F("ap_fixed<32,8>"), out_t=X_T)
    xf = rng.normal(0, 1, (60, n)) * rng.uniform(0.05, 20, (60, 1)) + rng.normal(0, 2, (60, 1))
    x = X_T.quantize(xf)
    gam, bet = g_t.quantize(rng.uniform(-2, 2, n)), g_t.quantize(rng.uniform(-1, 1, n))
    y = X_T.to_float(ln.forward(x, X_T, gam, g_t, bet, g_t))
    gf, bf = g_t.to_float(gam), g_t.to_float(bet)
    xv = X_T.to_float(x)
    ref = ln.reference(xv, gf, bf, eps=0.0)
    q = ln.in_t.cast(x, X_T)
    y_q = q - q.mean(axis=1, keepdims=True)
    var_sum = (y_q * y_q).sum(axis=1, keepdims=True)
    assert np.all((var_sum >= 2**16) & (var_sum <= 2**44))
    sv = np.sqrt(var_sum)
    k_lo, dk = sv - n / (8 * sv) - 1, n / (8 * sv) + 1
    algo = (math.sqrt(n) / k_lo * (0.5 + np.abs(y_q) * dk / sv + np.abs(y_q) * (sv + dk) / 2**31)
            + 2 * math.sqrt(n) / 2**30)
    s = 2.0**-k
    sigma = xv.std(axis=1, keepdims=True)
    norm = np.abs((xv - xv.mean(axis=1, keepdims=True)) / sigma)
    inp = s / sigma * (1 + norm) * (1 + 2 * s / sigma)
    const = (norm + algo + inp) * 2.0**-24
    bound = np.abs(gf) * (algo + inp + const + ln.norm_t.lsb) + X_T.lsb
    err = np.abs(y - ref)
    assert np.all(err <= bound)
    assert err.max() < 5e-3
