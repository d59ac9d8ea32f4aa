"""The fma_floor kernel: per-product truncated sums by round-down AVX-512 FMAs equal the
int64 kernel's sums bit for bit, up to the 2**51 bound it is admitted under."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, _matmul
from vitaccel.fixed import _fma_floor as fma
from vitaccel.fixed._kernels import mm_floor_sum, pick

needs_avx512 = pytest.mark.skipif(not fma.available(), reason="needs AVX-512F")


def _int64_sum(x, w, shift, acc0, d, width, signed):
    lane = np.int64(0)
    return pick(mm_floor_sum, x.size * w.shape[2])(x, w, shift, acc0, d, width, signed, lane)


@needs_avx512
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    dims=st.tuples(st.integers(1, 3), st.integers(0, 21), st.integers(0, 40),
                   st.integers(0, 53)),
    bits=st.tuples(st.integers(1, 40), st.integers(1, 20)),
    extra_shift=st.integers(0, 20),
    d=st.integers(0, 6),
    width=st.integers(2, 64),
    signed=st.booleans(),
)
def test_fma_floor_equals_the_int64_kernel(seed, dims, bits, extra_shift, d, width,
                                           signed) -> None:
    """Random codes with their extremes (the most negative codes, negative terms that
    floor away from zero), row and column counts on both sides of the 8 x 24 tile, K = 0,
    shifts that drop every bit of some terms, wrapped and unsigned outputs."""
    g, m, k, n = dims
    shift = max(0, sum(bits) + 8 - 51) + extra_shift  # the smallest that fits, and more
    rng = np.random.default_rng(seed)
    x = rng.integers(-(2 ** bits[0]), 2 ** bits[0], (g, m, k))
    w = rng.integers(-(2 ** bits[1]), 2 ** bits[1], (g, k, n))
    if x.size and w.size:
        x.flat[0], w.flat[0], w.flat[-1] = -(2 ** bits[0]), -(2 ** bits[1]), 2 ** bits[1] - 1
    acc0 = rng.integers(-(2**40), 2**40, n)
    assert fma.fits(2 ** bits[0], 2 ** bits[1], shift, k)
    got, got_abs = fma.fma_floor_sum(x, w, shift, acc0, d, width, signed)
    want, _ = _int64_sum(x, w, shift, acc0, d, width, signed)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_abs, np.abs(x).sum(axis=2))  # exact: below 2**47


@needs_avx512
def test_partial_sums_just_below_two_to_the_51_stay_exact() -> None:
    """Four terms floor(-(2**50 - 3) / 2) = -(2**49 - 1): fits() admits them (bound
    4 * 2**49 - 4 < 2**51), and the sum -(2**51 - 4) comes out exact; one more term is
    refused."""
    x = np.full((1, 9, 4), -(2**50 - 3), np.int64)
    w = np.ones((1, 4, 25), np.int64)
    assert fma.fits(2**50 - 3, 1, 1, 4) and not fma.fits(2**50 - 3, 1, 1, 5)
    got, _ = fma.fma_floor_sum(x, w, 1, np.zeros(25, np.int64), 0, 64, True)
    assert (got == -(2**51 - 4)).all()


def test_fits_bounds() -> None:
    assert fma.fits(2**53, 1, 3, 1) and not fma.fits(2**53 + 1, 1, 3, 1)
    assert not fma.fits(1, 2**53 + 1, 0, 1)
    assert fma.fits(2**31, 2**15, 14, 3072)  # Edge-MoE's widest linear product
    assert not fma.fits(2**40, 2**15, 14, 3072)  # 3072 * 2**41 > 2**51
    assert fma.fits(5, 5, 0, 0)


def test_generic_numba_target_turns_the_path_off(monkeypatch) -> None:
    """With numba compiling for a generic CPU (NUMBA_CPU_NAME), the AVX-512 kernel cannot
    be built: the path leaves legal_paths and fixed_matmul refuses it by name."""
    monkeypatch.setattr(numba.config, "CPU_NAME", "generic")
    fma.available.cache_clear()
    try:
        assert not fma.available()
        act, wgt = FixedType.parse("ap_fixed<32,10>"), FixedType.parse("ap_fixed<16,2>")
        paths = _matmul.legal_paths((-5, 5), (-5, 5), (0, 0), 8, act, wgt, act, act, True)
        assert list(paths) == ["floor64", "wrap", "exact"]
        with pytest.raises(UsageError, match="path .fma_floor. is not provably exact"):
            _matmul.fixed_matmul(np.ones((2, 8), np.int64), act, np.ones((8, 3), np.int64),
                                 wgt, acc_t=act, product_t=act, path="fma_floor")
    finally:
        fma.available.cache_clear()
