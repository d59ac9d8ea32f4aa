"""The compiled scalar blocks equal their vectorised definitions in vitaccel.units._ops."""

import numpy as np
import pytest
from _fixed_oracle import formats
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, Overflow, add_type, fixed_add
from vitaccel.units._ops import (
    add_assign,
    assign,
    leading_one,
    mul_assign,
    scale_pow2,
    shift_floor,
)
from vitaccel.units._scalar import leading_one_one, shift_floor_one

_I64 = st.integers(-(2**63), 2**63 - 1)


@given(st.lists(_I64, min_size=1, max_size=20), st.integers(-70, 70))
def test_shift_floor_one(values, k):
    v = np.array(values, dtype=np.int64)
    want = shift_floor(v, np.int64(k))
    got = np.array([shift_floor_one(np.int64(a), np.int64(k)) for a in v], dtype=np.int64)
    np.testing.assert_array_equal(got, want)


@given(st.lists(st.integers(1, 2**63 - 1), min_size=1, max_size=20))
def test_leading_one_one(values):
    v = np.array(values, dtype=np.int64)
    got = np.array([leading_one_one(np.int64(a)) for a in v], dtype=np.int64)
    np.testing.assert_array_equal(got, leading_one(v))
    powers = np.int64(1) << np.arange(63, dtype=np.int64)
    for p in powers:
        assert leading_one_one(p) == leading_one(np.array([p]))[0]
        if p > 1:
            assert leading_one_one(p - 1) == leading_one(np.array([p - 1]))[0]


@settings(max_examples=60, deadline=None)
@given(
    a_t=formats(max_width=40), b_t=formats(max_width=40), dst=formats(max_width=40),
    seed=st.integers(0, 2**31 - 1), n=st.sampled_from([1, 7, 5000]),
)
def test_add_assign_equals_exact_sum_then_assignment(a_t, b_t, dst, seed, n):
    """The compiled ``dst = a + b`` (large arrays) equals the core's exact sum and assignment,
    codes and overflow counts, with extremes of both operands."""
    rng = np.random.default_rng(seed)
    try:
        add_type(a_t, b_t)
    except UsageError:  # the exact sum needs more than 64 bits: refused by both
        with pytest.raises(UsageError, match="add_type"):
            add_assign(dst, np.zeros(n, np.int64), a_t, np.zeros(n, np.int64), b_t, {}, "r")
        return
    a = rng.integers(a_t.min_raw, a_t.max_raw + 1, n)
    b = rng.integers(b_t.min_raw, b_t.max_raw + 1, n)
    a[:2], b[:2] = [a_t.min_raw, a_t.max_raw][: min(n, 2)], [b_t.min_raw, b_t.max_raw][: min(n, 2)]
    got_ovf: dict[str, int] = {}
    want_ovf: dict[str, int] = {}
    got = add_assign(dst, a, a_t, b, b_t, got_ovf, "r")
    want = assign(dst, *fixed_add(a, a_t, b, b_t), want_ovf, "r")
    np.testing.assert_array_equal(got, want)
    assert got_ovf == want_ovf


def test_scale_pow2_counts_a_saturated_shifter_word_as_an_overflow():
    """A left shift beyond the shifter (word saturated at 2**61) is an overflow of ``dst``,
    as in the C++ (a 64-bit word), not an error."""
    dst = FixedType(16, 4, True, overflow=Overflow.SAT)
    ovf: dict[str, int] = {}
    out = scale_pow2(np.array([1, -1, 3]), FixedType(8, 8), np.array([70, 70, 1]), dst, ovf, "s")
    np.testing.assert_array_equal(out, [dst.max_raw, dst.min_raw, 6 << 12])
    assert ovf == {"s": 2}


def test_mul_assign_refuses_a_64_bit_unsigned_reduction():
    """Unsigned operands whose exact product is reduced into a 64-bit unsigned word (codes
    beyond int64) are refused with the usage message, not an OverflowError."""
    a_t = FixedType(33, 10, False)
    dst = FixedType(50, 8, False)  # 20 integer + 42 fractional + 2 bits: ap_ufixed<64, 20>
    a = np.array([a_t.max_raw])
    with pytest.raises(UsageError, match="needs more than 64 bits"):
        mul_assign(dst, a, a_t, a, a_t, {}, "m")
