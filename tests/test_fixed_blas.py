"""float_matmul: the BLAS product split over numba's threads equals numpy's."""

from __future__ import annotations

import numpy as np
import pytest

from vitaccel.fixed._blas import float_matmul


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [((700, 64), (64, 300)), ((5, 120, 64), (5, 64, 90)), ((1, 600, 80), (1, 80, 70)),
     ((3, 4), (4, 2)), ((0, 4), (4, 3)), ((2, 0, 4), (2, 4, 3)), ((6, 0), (0, 5)),
     ((4, 300, 40), (4, 40, 500))],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_product_equals_numpy(a_shape, b_shape, dtype) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, a_shape).astype(dtype)
    b = rng.integers(-128, 128, b_shape).astype(dtype)
    got = float_matmul(a, b)
    assert got.dtype == dtype and got.shape == (a @ b).shape
    np.testing.assert_array_equal(got, a @ b)
    if a.ndim == 2 and a.shape[0] > 1:  # a column slice: not contiguous
        np.testing.assert_array_equal(float_matmul(a[:, 1:], b[1:]), a[:, 1:] @ b[1:])
