"""fixed_matmul: every exact path agrees with a scalar oracle of the hardware loop."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from _fixed_oracle import formats, oracle_assign, value_of
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, Overflow, Rounding, fixed_matmul
from vitaccel.fixed._fma_floor import available as fma_available
from vitaccel.fixed._matmul import PATHS, legal_paths

EDGE_ACT = FixedType.parse("ap_fixed<32,10>")
EDGE_WGT = FixedType.parse("ap_fixed<16,2>")


def oracle_matmul(x, x_t, w, w_t, acc_t, product_t, bias, bias_t):
    """The hardware loop on Fractions: assignment after every product and every addition."""
    m_rows, k_len = x.shape
    n_cols = w.shape[1]
    out = np.zeros((m_rows, n_cols), dtype=np.int64)
    n_ovf = 0
    for m in range(m_rows):
        for n in range(n_cols):
            flag = False
            acc = 0
            if bias is not None:
                acc, flag = oracle_assign(value_of(int(bias[n]), bias_t), acc_t)
            for k in range(k_len):
                p = value_of(int(x[m, k]), x_t) * value_of(int(w[k, n]), w_t)
                if product_t is not None:
                    code, o = oracle_assign(p, product_t)
                    p, flag = value_of(code, product_t), flag or o
                acc, o = oracle_assign(value_of(acc, acc_t) + p, acc_t)
                flag = flag or o
            out[m, n] = acc
            n_ovf += flag
    return out, n_ovf


def _all_paths(x, x_t, w, w_t, **kw):
    x_r = (int(x.min()), int(x.max())) if x.size else (0, 0)
    w_r = (int(w.min()), int(w.max())) if w.size else (0, 0)
    acc_t = kw["acc_t"]
    acc0 = (0, 0)
    if kw.get("bias_raw") is not None and len(kw["bias_raw"]):
        cast = acc_t.cast(kw["bias_raw"], kw["bias_t"])
        acc0 = (int(cast.min()), int(cast.max()))
    legal = legal_paths(x_r, w_r, acc0, w.shape[0], x_t, w_t, acc_t, kw.get("product_t"), True)
    return {p: fixed_matmul(x, x_t, w, w_t, path=p, return_overflow=True, **kw) for p in legal}


@st.composite
def matmul_case(draw):
    x_t = draw(formats(max_width=12))
    w_t = draw(formats(max_width=12))
    acc_t = draw(formats(max_width=30))
    product_t = draw(st.none() | formats(max_width=24))
    m, k, n = draw(st.integers(1, 3)), draw(st.integers(0, 6)), draw(st.integers(1, 3))
    x = draw(st.lists(st.integers(x_t.min_raw, x_t.max_raw), min_size=m * k, max_size=m * k))
    w = draw(st.lists(st.integers(w_t.min_raw, w_t.max_raw), min_size=k * n, max_size=k * n))
    bias_t = draw(st.none() | formats(max_width=20))
    bias = None
    if bias_t is not None:
        bias = draw(st.lists(st.integers(bias_t.min_raw, bias_t.max_raw), min_size=n, max_size=n))
        bias = np.array(bias, dtype=np.int64)
    x = np.array(x, dtype=np.int64).reshape(m, k)
    w = np.array(w, dtype=np.int64).reshape(k, n)
    return x, x_t, w, w_t, acc_t, product_t, bias, bias_t


@settings(deadline=None, max_examples=60)
@given(case=matmul_case())
def test_every_path_matches_the_oracle(case) -> None:
    x, x_t, w, w_t, acc_t, product_t, bias, bias_t = case
    expected = oracle_matmul(x, x_t, w, w_t, acc_t, product_t, bias, bias_t)
    results = _all_paths(
        x, x_t, w, w_t, acc_t=acc_t, product_t=product_t, bias_raw=bias, bias_t=bias_t
    )
    assert "exact" in results
    for path, (raw, n_ovf) in results.items():
        np.testing.assert_array_equal(raw, expected[0], err_msg=path)
        assert n_ovf == expected[1], path


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), acc_bits=st.integers(14, 40))
def test_fast_paths_equal_exact_on_larger_random_products(seed: int, acc_bits: int) -> None:
    rng = np.random.default_rng(seed)
    x_t, w_t = FixedType(8, 3), FixedType(8, 1)
    m, k, n = rng.integers(1, 20), rng.integers(1, 200), rng.integers(1, 20)
    x = rng.integers(x_t.min_raw, x_t.max_raw + 1, (m, k))
    w = rng.integers(w_t.min_raw, w_t.max_raw + 1, (k, n))
    for overflow in (Overflow.WRAP, Overflow.SAT):
        acc_t = FixedType(acc_bits, acc_bits - 12, True, Rounding.TRN, overflow)
        results = _all_paths(x, x_t, w, w_t, acc_t=acc_t)
        for path, (raw, n_ovf) in results.items():
            np.testing.assert_array_equal(raw, results["exact"][0], err_msg=path)
            assert n_ovf == results["exact"][1]


def test_saturating_accumulator_differs_from_a_saturated_naive_sum() -> None:
    one = FixedType.integer(8)
    acc_t = FixedType(8, 8, True, Rounding.TRN, Overflow.SAT)
    x = np.array([[100, 100, -100]])
    w = np.array([[1], [1], [1]])
    raw, n_ovf = fixed_matmul(x, one, w, one, acc_t=acc_t, return_overflow=True)
    naive = int(np.clip(x @ w, acc_t.min_raw, acc_t.max_raw)[0, 0])
    assert raw.tolist() == [[27]] and naive == 100 and n_ovf == 1
    legal = legal_paths((-100, 100), (1, 1), (0, 0), 3, one, one, acc_t, None, False)
    assert list(legal) == ["sat", "exact"]
    with pytest.raises(UsageError, match="not provably exact"):
        fixed_matmul(x, one, w, one, acc_t=acc_t, path="blas64")
    assert fixed_matmul(x, one, w, one, acc_t=acc_t, path="exact").tolist() == [[27]]


def test_rounding_accumulator_is_applied_after_every_addition() -> None:
    x_t = FixedType(8, 4)  # LSB 1/16
    acc_t = FixedType(8, 6, True, Rounding.RND_CONV, Overflow.SAT)  # LSB 1/4
    x = np.array([[2, 2, 2, 2]])  # 4 x 0.125: each step rounds 0.125 + acc half to even
    w = np.array([[16], [16], [16], [16]])  # weights 1.0 in ap_fixed<8,4>
    raw = fixed_matmul(x, x_t, w, x_t, acc_t=acc_t)
    assert raw.tolist() == oracle_matmul(x, x_t, w, x_t, acc_t, None, None, None)[0].tolist()
    assert raw.tolist() != [[2]]  # the exact sum 0.5 would be code 2


def test_edge_moe_formats_take_the_floor64_path_and_match_exact() -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(-(2**31), 2**31, (5, 64))
    w = rng.integers(-(2**15), 2**15, (64, 9))
    bias_t = FixedType.parse("ap_fixed<16,7>")
    bias = rng.integers(bias_t.min_raw, bias_t.max_raw + 1, 9)
    kw = dict(acc_t=EDGE_ACT, product_t=EDGE_ACT, bias_raw=bias, bias_t=bias_t)
    results = _all_paths(x, EDGE_ACT, w, EDGE_WGT, **kw)
    floors = ["fma_floor", "floor64"] if fma_available() else ["floor64"]
    assert list(results) == [*floors, "wrap", "exact"]
    for path in (*floors, "wrap"):
        np.testing.assert_array_equal(results[path][0], results["exact"][0])
        assert results[path][1] == results["exact"][1] > 0
    small = oracle_matmul(
        x[:2, :6], EDGE_ACT, w[:6, :3], EDGE_WGT, EDGE_ACT, EDGE_ACT, bias[:3], bias_t
    )[0]
    got = fixed_matmul(
        x[:2, :6],
        EDGE_ACT,
        w[:6, :3],
        EDGE_WGT,
        acc_t=EDGE_ACT,
        product_t=EDGE_ACT,
        bias_raw=bias[:3],
        bias_t=bias_t,
    )
    np.testing.assert_array_equal(got, small)


def test_path_choice_follows_the_data_bound() -> None:
    x_t, w_t = FixedType(8, 3), FixedType(8, 1)
    full = FixedType(24, 12)
    paths = legal_paths((-128, 127), (-128, 127), (0, 0), 768, x_t, w_t, full, None, False)
    assert list(paths)[:2] == ["int8", "blas32"]
    stack = legal_paths((-128, 127), (-128, 127), (0, 0), 768, x_t, w_t, full, None, False, True)
    assert list(stack)[:3] == ["blas32", "blas64", "int8"]
    # unsigned 8-bit codes do not fit int8; 2**17 terms of 2**14 leave int32
    u8 = FixedType(8, 0, signed=False)
    assert "int8" not in legal_paths((0, 255), (-128, 127), (0, 0), 768, u8, w_t, full, None,
                                     False)
    wide = FixedType(40, 20)
    assert "int8" in legal_paths((-128, 127), (-128, 127), (0, 0), (1 << 17) - 1, x_t, w_t,
                                 wide, None, False)
    assert "int8" not in legal_paths((-128, 127), (-128, 127), (0, 0), 1 << 17, x_t, w_t,
                                     wide, None, False)
    sat = full.with_modes(overflow=Overflow.SAT)
    assert list(
        legal_paths((-128, 127), (-128, 127), (0, 0), 192, x_t, w_t, sat, None, False)
    )[:2] == ["int8", "blas32"]
    # 2**14 per product * 2**10 terms exceeds 2**23: a saturating accumulator clamps each step
    assert list(
        legal_paths((-128, 127), (-128, 127), (0, 0), 1024, x_t, w_t, sat, None, False)
    ) == ["sat", "exact"]
    rnd = sat.with_modes(rounding=Rounding.RND)  # rounding never fires: F_acc == F_product
    assert "sat" in legal_paths((-128, 127), (-128, 127), (0, 0), 1024, x_t, w_t, rnd, None, False)
    # large operands: float32 products are inexact, float64 with K chunks is exact
    big = FixedType(32, 10)
    paths = legal_paths(
        (-(2**31), 2**31 - 1),
        (-(2**15), 2**15 - 1),
        (0, 0),
        768,
        big,
        EDGE_WGT,
        FixedType(64, 28),
        None,
        False,
    )
    assert next(iter(paths)) == "blas64" and paths["blas64"] == 128  # 2**53 // 2**46


def test_batch_dims_and_chunked_blas_match_exact() -> None:
    rng = np.random.default_rng(3)
    big = FixedType(32, 10)
    x = rng.integers(-(2**31), 2**31, (2, 3, 300))
    x[0, 0, :] = -(2**31)
    w = rng.integers(-(2**15), 2**15, (300, 4))
    w[:, 0] = -(2**15)
    acc_t = FixedType(62, 26)  # same LSB as the exact product
    fast = fixed_matmul(x, big, w, EDGE_WGT, acc_t=acc_t)
    exact = fixed_matmul(x, big, w, EDGE_WGT, acc_t=acc_t, path="exact")
    assert fast.shape == (2, 3, 4)
    np.testing.assert_array_equal(fast, exact)
    np.testing.assert_array_equal(fast, x @ w)  # int64 reference: |sum| < 300 * 2**46
    assert fast[0, 0, 0] == 300 * 2**46  # beyond 2**53: only exact because K is chunked
    acc64 = FixedType(64, 28)  # acc + p needs 65 bits: only the BLAS path is available
    np.testing.assert_array_equal(fixed_matmul(x, big, w, EDGE_WGT, acc_t=acc64), fast)
    with pytest.raises(UsageError, match="not provably exact"):
        fixed_matmul(x, big, w, EDGE_WGT, acc_t=acc64, path="exact")


@pytest.mark.parametrize("path", ["blas32", "blas64", "int8"])
def test_stacked_weights_take_one_chunked_blas_call_and_match_exact(path) -> None:
    """Attention-style stacks x (G, M, K) @ w (G, K, N): K is cut into chunks (blas32 holds
    2**24 / 2**14 = 1024 products of 7-bit codes, K = 1500 needs two; int8 runs item by
    item), bias and overflow counts per item."""
    rng = np.random.default_rng(11)
    x_t, w_t = FixedType(8, 4), FixedType(8, 2)
    x = rng.integers(-128, 128, (3, 5, 1500))
    w = rng.integers(-128, 128, (3, 1500, 7))
    x[1, 2, :], w[1, :, 3] = -128, -128  # the largest partial sums
    bias_t = FixedType(12, 10, True, Rounding.RND, Overflow.SAT)
    bias = rng.integers(bias_t.min_raw, bias_t.max_raw + 1, 7)
    acc_t = FixedType(40, 20)
    kw = dict(acc_t=acc_t, bias_raw=bias, bias_t=bias_t, return_overflow=True)
    fast = fixed_matmul(x, x_t, w, w_t, path=path, **kw)
    exact = fixed_matmul(x, x_t, w, w_t, path="exact", **kw)
    np.testing.assert_array_equal(fast[0], exact[0])
    assert fast[1] == exact[1]
    assert fast[0][1, 2, 3] == (128 * 128 * 1500 << 10) + (int(bias[3]) << 18)


@pytest.mark.parametrize("x_t", [FixedType(8, 4), FixedType(20, 4)])
def test_large_operands_validated_with_their_copy(x_t) -> None:
    """Operands of 4096 codes and more get their range and their copy in one pass (int8 for
    8-bit formats, float64 for 20-bit ones, whatever path is then chosen): same bits as the
    exact path, transposed views included, and out-of-range codes are refused (the int8 copy
    of 128 would read -128)."""
    rng = np.random.default_rng(12)
    w_t, acc_t = FixedType(8, 2), FixedType(48, 20)
    x = rng.integers(-100, 100, (96, 300))
    w = rng.integers(w_t.min_raw, w_t.max_raw + 1, (64, 300)).T  # a non-contiguous view
    want = fixed_matmul(x, x_t, w, w_t, acc_t=acc_t, path="exact")
    for path in ("int8", "blas32", "blas64", None):
        np.testing.assert_array_equal(fixed_matmul(x, x_t, w, w_t, acc_t=acc_t, path=path), want)
    x[50, 7] = x_t.max_raw + 1
    with pytest.raises(UsageError, match=rf"x_raw codes must lie in \[{x_t.min_raw}, "):
        fixed_matmul(x, x_t, w, w_t, acc_t=acc_t)


def test_int8_path_is_exact_up_to_the_int32_bound() -> None:
    """The int8 GEMM accumulates in int32: (2**17 - 1) products of -128 * -128 sum to
    2**31 - 2**14 and are exact; at 2**17 terms the path is refused."""
    t = FixedType(8, 0)
    acc_t = FixedType(48, 32)  # the products' 16 fraction bits
    for k_len in ((1 << 17) - 1, 1 << 17):
        x = np.full((2, k_len), -128)
        w = np.full((k_len, 3), -128)
        w[::2, 1] = 127
        if k_len < 1 << 17:
            got = fixed_matmul(x, t, w, t, acc_t=acc_t, path="int8")
            np.testing.assert_array_equal(got, fixed_matmul(x, t, w, t, acc_t=acc_t,
                                                            path="blas64"))
            assert got[0, 0] == (1 << 31) - (1 << 14)
        else:
            with pytest.raises(UsageError, match="'int8' is not provably exact"):
                fixed_matmul(x, t, w, t, acc_t=acc_t, path="int8")


def test_bad_arguments_are_refused() -> None:
    t = FixedType(8, 3)
    with pytest.raises(UsageError, match="shapes"):
        fixed_matmul(np.zeros((2, 3), int), t, np.zeros((4, 2), int), t, acc_t=t)
    with pytest.raises(UsageError, match="bias_t"):
        fixed_matmul(
            np.zeros((2, 3), int), t, np.zeros((3, 2), int), t, acc_t=t, bias_raw=np.zeros(2, int)
        )
    with pytest.raises(UsageError, match="path must be one of"):
        fixed_matmul(np.zeros((2, 3), int), t, np.zeros((3, 2), int), t, acc_t=t, path="gpu")
    with pytest.raises(UsageError, match=r"x_raw codes must lie in \[-128, 127\]"):
        fixed_matmul(np.full((2, 3), 300), t, np.zeros((3, 2), int), t, acc_t=t)
    assert set(PATHS) == {"int8", "blas32", "blas64", "fma_floor", "floor64", "wrap", "sat",
                          "exact"}


def test_oracle_helper_is_exact() -> None:
    assert value_of(3, FixedType(8, 6)) == Fraction(3, 4)


_FLOOR_PATHS = [
    "floor64",
    pytest.param("fma_floor", marks=pytest.mark.skipif(not fma_available(),
                                                       reason="needs AVX-512F")),
]


@pytest.mark.parametrize("path", _FLOOR_PATHS)
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    dims=st.tuples(st.integers(1, 19), st.integers(1, 40), st.sampled_from([1, 3, 7, 129, 260])),
    batch=st.sampled_from([None, 1, 3]),
    x_shift=st.integers(0, 28),
    prod=st.sampled_from(["ap_fixed<32,10>", "ap_fixed<36,14>", "ap_ufixed<32,10>"]),
)
def test_floor64_flags_and_codes_equal_the_exact_path(path, seed, dims, batch, x_shift,
                                                      prod) -> None:
    """Per-product truncation (int64 kernel, and AVX-512 FMAs): same codes and overflow
    counts as the sequential path, whether the data stays in range (bias-only flags) or
    overflows; rows and columns that do not fill the kernels' 4 x 128 and 8 x 24 tiles, and
    stacked (batched) weights."""
    rng = np.random.default_rng(seed)
    m, k, n = dims
    lead = () if batch is None else (batch,)
    x = rng.integers(-(2**31), 2**31, (*lead, m, k)) >> x_shift
    w = rng.integers(-(2**15), 2**15, (*lead, k, n))
    bias = rng.integers(EDGE_ACT.min_raw, EDGE_ACT.max_raw + 1, n) >> x_shift
    kw = dict(acc_t=EDGE_ACT, product_t=FixedType.parse(prod), bias_raw=bias, bias_t=EDGE_ACT,
              return_overflow=True)
    fast = fixed_matmul(x, EDGE_ACT, w, EDGE_WGT, path=path, **kw)
    slow = fixed_matmul(x, EDGE_ACT, w, EDGE_WGT, path="exact", **kw)
    np.testing.assert_array_equal(fast[0], slow[0])
    assert fast[1] == slow[1]


def test_wrap_path_counts_products_that_wrap() -> None:
    """AP_TRN/AP_WRAP products narrower than the product of the codes: a product that wraps
    is an overflow even when the accumulator never leaves its range."""
    x_t, w_t = FixedType(4, 3), FixedType(7, 4)
    term_t, acc_t = FixedType.parse("ap_fixed<8,4>"), FixedType.parse("ap_fixed<16,6>")
    x = np.array([[5], [7]])
    w = np.array([[8, 32, 8]])  # 3.5 * 4.0 = 14 does not fit ap_fixed<8,4>
    kw = dict(acc_t=acc_t, product_t=term_t, return_overflow=True)
    wrap = fixed_matmul(x, x_t, w, w_t, path="wrap", **kw)
    exact = fixed_matmul(x, x_t, w, w_t, path="exact", **kw)
    np.testing.assert_array_equal(wrap[0], exact[0])
    assert wrap[1] == exact[1] == 2


@pytest.mark.parametrize("acc", ["ap_fixed<16,6>", "ap_ufixed<16,6>", "ap_fixed<24,14>"])
@pytest.mark.parametrize("path", ["blas32", "blas64"])
def test_blas_paths_wrap_like_the_sequential_wrap(acc, path) -> None:
    """AP_WRAP accumulators that overflow (no overflow counts wanted): the BLAS total is
    wrapped once at the end, which equals wrapping after every step; one and several K
    chunks, stacked weights, a bias."""
    rng = np.random.default_rng(5)
    x_t, w_t, acc_t = FixedType(8, 4), FixedType(8, 2), FixedType.parse(acc)
    for k in (40, 1300):
        x = rng.integers(-128, 128, (3, 50, k))
        w = rng.integers(-128, 128, (3, k, 7))
        kw = dict(acc_t=acc_t, bias_raw=rng.integers(-100, 100, 7), bias_t=FixedType(10, 6))
        np.testing.assert_array_equal(fixed_matmul(x, x_t, w, w_t, path=path, **kw),
                                      fixed_matmul(x, x_t, w, w_t, path="exact", **kw))


@pytest.mark.parametrize("product", [True, False])
@pytest.mark.parametrize("k_len, n_cols", [(0, 3), (4, 0), (0, 0)])
def test_empty_inner_or_output_dimension_on_every_path(k_len, n_cols, product) -> None:
    """K = 0 leaves the (cast) bias; N = 0 an empty result (a reshape must not guess -1)."""
    act, wgt = FixedType.parse("ap_fixed<32,10>"), FixedType.parse("ap_fixed<16,2>")
    if not product:  # w8a8: full-precision products into a wide accumulator
        act, wgt = FixedType(8, 4), FixedType(8, -2)
    acc_t = FixedType(40, 10) if not product else act
    kw = dict(acc_t=acc_t, product_t=act if product else None,
              bias_raw=np.arange(n_cols, dtype=np.int64), bias_t=wgt)
    x = np.ones((2, 5, k_len), np.int64)
    w = np.ones((k_len, n_cols), np.int64)
    results = _all_paths(x[0], act, w, wgt, **kw)
    assert ("floor64" if product else "blas32") in results
    for path in results:
        raw, n = fixed_matmul(x, act, w, wgt, path=path, return_overflow=True, **kw)
        assert raw.shape == (2, 5, n_cols) and n == 0, path
        if k_len == 0:
            np.testing.assert_array_equal(raw, np.broadcast_to(acc_t.cast(kw["bias_raw"], wgt),
                                                               raw.shape), err_msg=path)


_WIDE_ACT = FixedType.parse("ap_fixed<40,18>")


@pytest.mark.parametrize("path", _FLOOR_PATHS)
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1),
       case=st.sampled_from([(_WIDE_ACT, "ap_fixed<12,2>", x_bits, 11)
                             for x_bits in (20, 30, 31, 35, 39)]
                            + [(EDGE_ACT, "ap_fixed<32,10>", 20, w_bits) for w_bits in (30, 31)]),
       batch=st.sampled_from([None, 4]))
def test_floor64_with_codes_on_both_sides_of_2_to_the_31(path, seed, case, batch) -> None:
    """The int64 kernel multiplies 32 x 32 -> 64 bits only while the codes of both operands
    fit int32, else full int64 products; the FMA kernel takes float64 copies of any code up
    to 2**53: either way the exact path's bits and overflow counts
    (wide ap_fixed<40,18> activations times 12-bit weights, and activations on both sides
    of an attention-like product); the most negative codes ``-2**bits`` are present."""
    act, w_fmt, x_bits, w_bits = case
    rng = np.random.default_rng(seed)
    lead = () if batch is None else (batch,)
    x = rng.integers(-(2**x_bits), 2**x_bits, (*lead, 9, 70))
    w = rng.integers(-(2**w_bits), 2**w_bits, (*lead, 70, 131))
    x.flat[0], w.flat[0] = -(2**x_bits), -(2**w_bits)
    kw = dict(acc_t=act, product_t=act, return_overflow=True)
    fast = fixed_matmul(x, act, w, FixedType.parse(w_fmt), path=path, **kw)
    slow = fixed_matmul(x, act, w, FixedType.parse(w_fmt), path="exact", **kw)
    np.testing.assert_array_equal(fast[0], slow[0])
    assert fast[1] == slow[1]
