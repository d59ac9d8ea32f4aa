"""The int8 path of fixed_matmul: codes as balanced int8 limbs, int8 GEMMs, parts in int64."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.fixed import FixedType, Overflow, Rounding, fixed_matmul
from vitaccel.fixed._int8 import codes_limbs, int8_limbs, limb_count, limb_product
from vitaccel.fixed._matmul import legal_paths


@pytest.mark.parametrize(("lo", "hi", "n"), [
    (-128, 127, 1), (-129, 0, 2), (0, 128, 2), (0, 255, 2), (-32896, 32639, 2),
    (-32897, 0, 3), (0, 32640, 3), (-(2**31), 127 * 16843009, 4), (-(2**31), 2**31 - 1, 0),
    (-128 * 16843009 - 1, 0, 0), (0, 2**32, 0),
])
def test_limb_count_is_the_range_of_balanced_digits(lo: int, hi: int, n: int) -> None:
    assert limb_count(lo, hi) == n


@settings(deadline=None, max_examples=60)
@given(n=st.integers(1, 4), shape=st.tuples(st.integers(1, 5), st.integers(1, 7)),
       data=st.data())
def test_limbs_rebuild_every_code(n: int, shape, data) -> None:
    r = ((1 << (8 * n)) - 1) // 255
    lo, hi = -128 * r, 127 * r
    codes = data.draw(st.lists(st.integers(lo, hi) | st.sampled_from([lo, hi, 0, -1]),
                               min_size=shape[0] * shape[1], max_size=shape[0] * shape[1]))
    a = np.array(codes, dtype=np.int64).reshape(shape)
    weights = 256 ** np.arange(n, dtype=np.int64)
    rows, r_lo, r_hi = codes_limbs(a, n, rows=True)  # (R, n, K)
    planes, p_lo, p_hi = codes_limbs(a, n, rows=False)  # (n, K, N)
    assert rows.dtype == planes.dtype == np.int8
    assert (r_lo, r_hi) == (p_lo, p_hi) == (a.min(), a.max())
    np.testing.assert_array_equal(np.einsum("rlk,l->rk", rows.astype(np.int64), weights), a)
    np.testing.assert_array_equal(np.einsum("lkn,l->kn", planes.astype(np.int64), weights), a)


def test_limb_product_parts_sum_to_the_product() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(-(2**15), 2**15, (9, 40))
    w = rng.integers(-(2**20), 2**20, (40, 6))
    x[0], x[1], w[:, 0] = -(2**15), 2**15 - 1, 2**20 - 1
    nx, nw = limb_count(x.min(), x.max()), limb_count(w.min(), w.max())
    assert (nx, nw) == (3, 3)
    parts = limb_product(codes_limbs(x, nx, True)[0], codes_limbs(w, nw, False)[0])
    assert parts.shape == (5, 9, 6) and parts.dtype == np.int32
    total = sum(parts[s].astype(np.int64) << (8 * s) for s in range(5))
    np.testing.assert_array_equal(total, x @ w)


@st.composite
def wide_case(draw):
    x_t = FixedType(draw(st.integers(2, 24)), draw(st.integers(-4, 8)),
                    signed=draw(st.booleans()))
    w_t = FixedType(draw(st.integers(2, 24)), draw(st.integers(-4, 8)))
    m, k, n = draw(st.integers(1, 6)), draw(st.integers(0, 70)), draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.integers(x_t.min_raw, x_t.max_raw + 1, (m, k))
    w = rng.integers(w_t.min_raw, w_t.max_raw + 1, (k, n))
    if k and draw(st.booleans()):  # the extreme codes: the largest parts and limb counts
        x[0] = x_t.min_raw if x_t.signed else x_t.max_raw
        w[:, 0] = w_t.min_raw
    overflow = draw(st.sampled_from([Overflow.WRAP, Overflow.SAT]))
    extra = draw(st.integers(7, 12))  # K < 2**7 terms: the accumulator never overflows
    acc_t = FixedType(x_t.width + w_t.width + extra, x_t.int_bits + w_t.int_bits + extra,
                      True, Rounding.TRN, overflow)
    return x, x_t, w, w_t, acc_t


@settings(deadline=None, max_examples=60)
@given(case=wide_case(), with_bias=st.booleans())
def test_int8_path_equals_the_exact_path(case, with_bias: bool) -> None:
    x, x_t, w, w_t, acc_t = case
    kw = dict(acc_t=acc_t, return_overflow=True)
    acc0 = (0, 0)
    if with_bias:
        bias_t = FixedType(10, 3)
        bias = np.arange(w.shape[1]) * 37 % 1024 - 512
        kw.update(bias_raw=bias, bias_t=bias_t)
        cast = acc_t.cast(bias, bias_t)
        acc0 = (int(cast.min()), int(cast.max()))
    x_r = (int(x.min()), int(x.max())) if x.size else (0, 0)
    w_r = (int(w.min()), int(w.max())) if w.size else (0, 0)
    legal = legal_paths(x_r, w_r, acc0, w.shape[0], x_t, w_t, acc_t, None, True)
    if acc0 == (0, 0):  # no bias: the sums never overflow, so only the limbs decide
        assert ("int8" in legal) == (int8_limbs(x_r, w_r, w.shape[0]) is not None)
    if "int8" not in legal:
        return
    got, n_ovf = fixed_matmul(x, x_t, w, w_t, path="int8", **kw)
    want, n_want = fixed_matmul(x, x_t, w, w_t, path="exact", **kw)
    np.testing.assert_array_equal(got, want)
    assert n_ovf == n_want


def test_large_operands_take_their_limbs_from_the_range_pass() -> None:
    """16-bit codes (4096 and more) get two limbs in the validation pass; a code of 32640 or
    more needs three, and the path makes them instead of using the two-limb copy."""
    rng = np.random.default_rng(8)
    t, acc_t = FixedType(16, 4), FixedType(48, 16)
    x = rng.integers(t.min_raw, 32000, (70, 96))
    w = rng.integers(t.min_raw, t.max_raw + 1, (96, 50))
    for top in (32000, t.max_raw):
        x[3, 5] = top
        got = fixed_matmul(x, t, w, t, acc_t=acc_t)
        np.testing.assert_array_equal(got, fixed_matmul(x, t, w, t, acc_t=acc_t, path="exact"))


def test_int8_comes_first_for_one_gemm() -> None:
    s8, u8, s16 = FixedType(8, 2), FixedType(8, 0, signed=False), FixedType(16, 4)
    acc = FixedType(64, 24)

    def order(x_r, w_r, x_t, w_t, k=192, stacked=False):
        return list(legal_paths(x_r, w_r, (0, 0), k, x_t, w_t, acc, None, False, stacked))

    assert order((-128, 127), (-128, 127), s8, s8)[:2] == ["int8", "blas32"]
    assert order((0, 255), (-128, 127), u8, s8)[:3] == ["blas32", "blas64", "int8"]
    assert order((-30000, 30000), (-30000, 30000), s16, s16)[:2] == ["blas64", "int8"]
    assert order((-128, 127), (-128, 127), s8, s8, stacked=True)[:3] == [
        "blas32", "blas64", "int8"]
    # beyond float64: 3 x 4 limbs, products up to 2**54, still one exact GEMM path
    big, wide = FixedType(24, 8), FixedType(32, 8)
    paths = order((-(2**23), 0), (-(2**31), 0), big, wide)
    assert "blas64" not in paths and paths[0] == "int8"
    # two limbs each: 2 * K * 128 * 128 must stay inside int32
    assert int8_limbs((-30000, 30000), (-30000, 30000), 65535) == (2, 2)
    assert int8_limbs((-30000, 30000), (-30000, 30000), 65536) is None
