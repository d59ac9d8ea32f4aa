"""vitaccel.units.shiftadd against straightforward definitions (shift semantics, exact ints)."""

from __future__ import annotations

import math
from fractions import Fraction as F

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, add_type, fixed_matmul
from vitaccel.units.shiftadd import (
    LOG2_ZERO,
    binary_codes,
    binary_scores,
    log2_quantize_probs,
    masked_av,
    power_of_two_weights,
    shift_av,
    shift_linear,
    to_power_of_two,
    to_power_of_two_fixed,
)


def nearest_exp(value: F) -> int:
    """round(log2 value) for a positive rational, by exact comparison with 2^(e + 1/2)."""
    e = value.numerator.bit_length() - value.denominator.bit_length()
    while F(2) ** e > value:
        e -= 1
    while F(2) ** (e + 1) <= value:
        e += 1
    # value in [2^e, 2^(e+1)); the midpoint in log domain is 2^(e+1/2): value^2 vs 2^(2e+1)
    return e + 1 if value * value >= F(2) ** (2 * e + 1) else e


near_midpoint = st.builds(lambda p, d, s: s * math.sqrt(2) * 2.0**p * (1 + d),
                          st.integers(-11, 1), st.floats(-0.02, 0.02), st.sampled_from([-1, 1]))


@given(st.lists(st.one_of(st.floats(-4, 4, allow_nan=False, allow_subnormal=False),
                          near_midpoint), min_size=1, max_size=20),
       st.integers(-10, -2), st.integers(-1, 1))
def test_to_power_of_two_matches_definition(w, p_min, p_max):
    sign, exp = to_power_of_two(np.array(w), p_min, p_max)
    assert sign.dtype == np.int8
    for v, s, e in zip(w, sign, exp, strict=True):
        if v == 0 or abs(F(v)) < F(2) ** (p_min - 1):
            assert (s, e) == (0, p_min)
        else:
            assert s == (1 if v > 0 else -1)
            assert e == min(max(nearest_exp(abs(F(v))), p_min), p_max)


def test_to_power_of_two_boundaries():
    up = math.nextafter(math.sqrt(2), 3.0)
    down = math.nextafter(math.sqrt(2), 0.0)
    sign, exp = to_power_of_two([up, down, -up, 2.0**-9, 2.0**-9 * 0.999, 0.0], -8, 0)
    np.testing.assert_array_equal(sign, [1, 1, -1, 1, 0, 0])
    np.testing.assert_array_equal(exp, [0, 0, 0, -8, -8, -8])  # 2^(p_min - 1) is kept
    sign, exp = to_power_of_two([up, down], -8, 4)
    np.testing.assert_array_equal(exp, [1, 0])


@given(st.integers(2, 16).flatmap(lambda w: st.tuples(st.just(w), st.integers(-2, w))), st.data())
def test_to_power_of_two_fixed_is_the_exact_value(fmt, data):
    w_t = FixedType(width=fmt[0], int_bits=fmt[1])
    raw = np.array(data.draw(st.lists(st.integers(w_t.min_raw, w_t.max_raw), min_size=1,
                                      max_size=10)))
    got = to_power_of_two_fixed(raw, w_t, -6, 1)
    expect = to_power_of_two(raw * 2.0**-w_t.frac_bits, -6, 1)
    np.testing.assert_array_equal(got[0], expect[0])
    np.testing.assert_array_equal(got[1], expect[1])


def test_power_of_two_weights_format():
    w_raw, w_t = power_of_two_weights(np.array([1, -1, 0]), np.array([0, -3, 5]), -3, 0)
    assert str(w_t) == "ap_fixed<5,2>"
    np.testing.assert_array_equal(w_raw, [8, -1, 0])
    assert list(w_t.to_float(w_raw)) == [1.0, -0.125, 0.0]


# ---------------------------------------------------------------- shift/add linear
def shift_term(x_code: int, x_t: FixedType, sign: int, exp: int, term_t: FixedType) -> int:
    """sign * x * 2^exp in term_t LSBs: the negated-or-not x code shifted arithmetically
    (Python >> floors), as shift hardware does; term_t is wide enough not to overflow."""
    v = sign * x_code
    sh = exp + term_t.frac_bits - x_t.frac_bits
    return v << sh if sh >= 0 else v >> -sh


def stepwise(x, x_t, sign, exp, acc_t, term_t, bias=None, bias_t=None):
    sum_t = add_type(acc_t, term_t)
    out = np.zeros((x.shape[0], sign.shape[0]), dtype=np.int64)
    for m in range(x.shape[0]):
        for n in range(sign.shape[0]):
            acc = 0 if bias is None else int(acc_t.cast(np.array([bias[n]]), bias_t)[0])
            for k in range(x.shape[1]):
                t = shift_term(int(x[m, k]), x_t, int(sign[n, k]), int(exp[n, k]), term_t)
                code = (acc << (sum_t.frac_bits - acc_t.frac_bits)) + (
                    t << (sum_t.frac_bits - term_t.frac_bits))
                acc = int(acc_t.cast(np.array([code]), sum_t)[0])
            out[m, n] = acc
    return out


modes = st.sampled_from(["AP_TRN,AP_WRAP", "AP_TRN,AP_SAT", "AP_RND,AP_SAT", "AP_RND_CONV,AP_WRAP",
                         "AP_TRN_ZERO,AP_SAT_SYM"])


@settings(max_examples=40, deadline=None)
@given(st.integers(4, 14), st.integers(0, 6), st.integers(-6, -1), st.integers(-1, 1),
       st.integers(8, 20), st.integers(2, 8), st.integers(-2, 4), modes, st.booleans(), st.data())
def test_shift_linear_matches_shift_oracle(xw, xi, p_min, p_hi, aw, ai, term_fb, mode, bias,
                                           data):
    x_t = FixedType(width=xw, int_bits=xi)
    acc_t = FixedType.parse(f"ap_fixed<{aw},{ai},{mode}>")
    term_fb = x_t.frac_bits + term_fb
    term_ib = xi + 3
    term_t = FixedType(width=term_ib + term_fb, int_bits=term_ib) if term_ib + term_fb > 0 \
        else FixedType(width=term_ib + x_t.frac_bits, int_bits=term_ib)
    m, k, n = (data.draw(st.integers(1, hi)) for hi in (3, 8, 4))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(x_t.min_raw, x_t.max_raw + 1, size=(m, k))
    sign = rng.integers(-1, 2, size=(n, k))
    exp = rng.integers(p_min, p_hi + 1, size=(n, k))
    bias_t = FixedType.parse("ap_fixed<12,4>")
    b = rng.integers(bias_t.min_raw, bias_t.max_raw + 1, size=n) if bias else None
    got = shift_linear(x, x_t, sign, exp, acc_t=acc_t, term_t=term_t, bias_raw=b,
                       bias_t=bias_t if bias else None)
    np.testing.assert_array_equal(got, stepwise(x, x_t, sign, exp, acc_t, term_t, b, bias_t))


@settings(max_examples=40, deadline=None)
@given(st.integers(4, 16), st.integers(-2, 8), st.integers(-8, -1), st.integers(-1, 2),
       st.sampled_from(["ap_fixed<10,3>", "ap_fixed<12,5,AP_TRN,AP_SAT>", "ap_fixed<8,4>", None]),
       st.sampled_from(["ap_fixed<16,6>", "ap_fixed<24,8,AP_RND,AP_SAT>",
                        "ap_fixed<12,3,AP_TRN,AP_SAT_SYM>", "ap_fixed<32,12>"]), st.data())
def test_shift_linear_equals_fixed_matmul_with_pow2_weights(xw, xi, p_min, p_max, term, acc,
                                                            data):
    x_t = FixedType(width=xw, int_bits=xi)
    acc_t = FixedType.parse(acc)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    m, k, n = 2, data.draw(st.integers(1, 40)), 3
    w = rng.normal(0, 2.0 ** p_max, size=(n, k))
    sign, exp = to_power_of_two(w, p_min, p_max)
    x = rng.integers(x_t.min_raw, x_t.max_raw + 1, size=(m, k))
    term_t = FixedType.parse(term) if term else FixedType(
        width=xi + p_max + 2 + x_t.frac_bits, int_bits=xi + p_max + 2)
    w_raw, w_t = power_of_two_weights(sign, exp, p_min, p_max)
    got, n_got = shift_linear(x, x_t, sign, exp, acc_t=acc_t, term_t=term_t,
                              return_overflow=True)
    ref, n_ref = fixed_matmul(x, x_t, w_raw.T, w_t, acc_t=acc_t, product_t=term_t,
                              return_overflow=True)
    np.testing.assert_array_equal(got, ref)
    assert n_got == n_ref
    if term is None:  # default term format: floor to x's LSB, never overflows
        np.testing.assert_array_equal(got, stepwise(x, x_t, sign, exp, acc_t, term_t))


def test_shift_linear_counts_overflow_and_batches():
    x_t = FixedType.parse("ap_fixed<8,4>")
    acc_t = FixedType.parse("ap_fixed<8,4,AP_TRN,AP_SAT>")
    x = np.full((2, 3, 4), 100)
    sign = np.ones((2, 4), dtype=np.int8)
    exp = np.zeros((2, 4), dtype=np.int64)
    y, n = shift_linear(x, x_t, sign, exp, acc_t=acc_t, return_overflow=True)
    assert y.shape == (2, 3, 2) and n == 12
    np.testing.assert_array_equal(y, np.full((2, 3, 2), acc_t.max_raw))


# ---------------------------------------------------------------- log2 probabilities, A·V
@given(st.integers(2, 20), st.integers(-8, -1), st.data())
def test_log2_quantize_probs_matches_definition(width, min_exp, data):
    p_t = FixedType(width=width, int_bits=1, signed=False)
    raw = data.draw(st.lists(st.integers(0, p_t.max_raw), min_size=1, max_size=20))
    got = log2_quantize_probs(np.array(raw), p_t, min_exp)
    for r, e in zip(raw, got, strict=True):
        if r == 0:
            assert e == LOG2_ZERO
            continue
        expect = nearest_exp(F(r, 2**p_t.frac_bits))
        assert e == (expect if expect >= min_exp else LOG2_ZERO)
        if e != LOG2_ZERO:  # nearest in log domain: within a factor sqrt(2)
            ratio = F(2) ** int(e) / F(r, 2**p_t.frac_bits)
            assert F(1, 2) <= ratio * ratio <= 2


def test_log2_quantize_probs_zero_rule():
    p_t = FixedType.parse("ap_ufixed<16,1>")
    # 2^-4 * 0.7 rounds to 2^-5 < 2^-4 = smallest -> zero; 2^-4 * 0.71 rounds to 2^-4.
    raw = np.array([round(0.0625 * 0.70 * 2**15), round(0.0625 * 0.71 * 2**15), 2**15])
    np.testing.assert_array_equal(log2_quantize_probs(raw, p_t, -4), [LOG2_ZERO, -4, 0])


@settings(max_examples=40, deadline=None)
@given(st.integers(4, 12), st.integers(1, 6), st.sampled_from(
    ["ap_fixed<12,4>", "ap_fixed<16,8,AP_TRN,AP_SAT>", "ap_fixed<10,2,AP_RND,AP_SAT>"]),
    st.data())
def test_shift_av_matches_definition(vw, vi, acc, data):
    v_t = FixedType(width=vw, int_bits=vi)
    acc_t = FixedType.parse(acc)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    nq, nk, d = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6)), data.draw(
        st.integers(1, 3))
    exps = rng.integers(-6, 1, size=(2, nq, nk))
    exps[rng.random(exps.shape) < 0.2] = LOG2_ZERO
    v = rng.integers(v_t.min_raw, v_t.max_raw + 1, size=(2, nk, d))
    got = shift_av(exps, v, v_t, acc_t)
    term_t = FixedType(width=vi + 1 + v_t.frac_bits, int_bits=vi + 1)
    sum_t = add_type(acc_t, term_t)
    for b in range(2):
        for i in range(nq):
            for c in range(d):
                acc = 0
                for j in range(nk):
                    e = int(exps[b, i, j])
                    t = 0 if e == LOG2_ZERO else shift_term(int(v[b, j, c]), v_t, 1, e, term_t)
                    code = (acc << (sum_t.frac_bits - acc_t.frac_bits)) + (
                        t << (sum_t.frac_bits - term_t.frac_bits))
                    acc = int(acc_t.cast(np.array([code]), sum_t)[0])
                assert got[b, i, c] == acc


# ---------------------------------------------------------------- binary Q/K attention
@given(st.integers(1, 8), st.integers(1, 12), st.data())
def test_binary_codes_and_scores_match_definition(t, d, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(-1000, 1000, size=(2, t, d))
    codes = binary_codes(x)
    for b in range(2):
        for j in range(d):
            mean = math.floor(F(int(x[b, :, j].sum()), t))
            for i in range(t):
                assert codes[b, i, j] == (1 if x[b, i, j] - mean >= 0 else -1)
    k = binary_codes(rng.integers(-5, 5, size=(2, t + 1, d)))
    scores = binary_scores(codes, k)
    dot = np.einsum("bqd,bkd->bqk", codes.astype(np.int64), k.astype(np.int64))
    np.testing.assert_array_equal(scores, dot)
    hamming = (codes[:, :, None, :] != k[:, None, :, :]).sum(-1)
    np.testing.assert_array_equal(scores, d - 2 * hamming)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["ap_fixed<12,4>", "ap_fixed<10,3,AP_TRN,AP_SAT>"]), st.data())
def test_masked_av_matches_definition(acc, data):
    v_t = FixedType.parse("ap_fixed<8,3>")
    acc_t = FixedType.parse(acc)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    nq, nk, d = 3, data.draw(st.integers(1, 10)), 2
    w = rng.integers(-1, 2, size=(nq, nk))
    v = rng.integers(v_t.min_raw, v_t.max_raw + 1, size=(nk, d))
    got, n_ovf = masked_av(w, v, v_t, acc_t, return_overflow=True)
    sat = "SAT" in acc
    flagged = 0
    for i in range(nq):
        for c in range(d):
            acc_v, hit = 0, False
            for j in range(nk):
                acc_v += int(w[i, j]) * int(v[j, c]) << (acc_t.frac_bits - v_t.frac_bits)
                clipped = min(max(acc_v, acc_t.min_raw), acc_t.max_raw) if sat else (
                    (acc_v - acc_t.min_raw) % 2**acc_t.width + acc_t.min_raw)
                hit |= clipped != acc_v
                acc_v = clipped
            flagged += hit
            assert got[i, c] == acc_v
    assert n_ovf == flagged
    mask = w > 0
    np.testing.assert_array_equal(masked_av(mask, v, v_t, FixedType.parse("ap_fixed<20,10>")),
                                  (mask.astype(np.int64) @ v) << 5)


def test_bad_inputs_are_rejected():
    x_t = FixedType.parse("ap_fixed<8,4>")
    acc_t = FixedType.parse("ap_fixed<16,8>")
    with pytest.raises(UsageError, match="w"):
        to_power_of_two([np.nan], -4, 0)
    with pytest.raises(UsageError, match="p_min"):
        to_power_of_two([1.0], 1, 0)
    with pytest.raises(UsageError, match="sign"):
        shift_linear(np.zeros((1, 2), dtype=np.int64), x_t, np.array([[2, 0]]),
                     np.array([[0, 0]]), acc_t=acc_t)
    with pytest.raises(UsageError, match="shift_linear"):
        shift_linear(np.zeros((1, 3), dtype=np.int64), x_t, np.array([[1, 0]]),
                     np.array([[0, 0]]), acc_t=acc_t)
    with pytest.raises(UsageError, match="x_raw"):
        shift_linear(np.full((1, 2), 999), x_t, np.array([[1, 0]]), np.array([[0, 0]]),
                     acc_t=acc_t)
    with pytest.raises(UsageError, match="p_raw"):
        log2_quantize_probs(np.array([-1]), x_t, -4)
    with pytest.raises(UsageError, match="q_codes"):
        binary_scores(np.array([[0, 1]]), np.array([[1, 1]]))
    with pytest.raises(UsageError, match="x_raw"):
        binary_codes(np.array([0.5, 1.0]))
    with pytest.raises(UsageError, match="expected weights"):
        masked_av(np.ones((2, 3), dtype=np.int64), np.zeros((4, 2), dtype=np.int64), x_t, acc_t)
