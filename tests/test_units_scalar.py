"""The compiled scalar blocks equal their vectorised definitions in vitaccel.units._ops."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from vitaccel.units._ops import leading_one, shift_floor
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
