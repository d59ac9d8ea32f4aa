"""float_matmul: the BLAS product (torch's matmul, or split over numba's threads) equals
numpy's, and stays exact when torch is allowed to trade float32 precision for speed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitaccel.fixed import _blas
from vitaccel.fixed._blas import float_matmul, torch_is_exact

SHAPES = [((700, 64), (64, 300)), ((5, 120, 64), (5, 64, 90)), ((1, 600, 80), (1, 80, 70)),
          ((3, 4), (4, 2)), ((0, 4), (4, 3)), ((2, 0, 4), (2, 4, 3)), ((6, 0), (0, 5)),
          ((4, 300, 40), (4, 40, 500))]


@pytest.mark.parametrize("on_torch", [True, False])
@pytest.mark.parametrize("a_shape, b_shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_product_equals_numpy(a_shape, b_shape, dtype, on_torch, monkeypatch) -> None:
    if not on_torch:  # the numba-split fallback
        monkeypatch.setattr(_blas, "torch_is_exact", lambda dtype: False)
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, a_shape).astype(dtype)
    b = rng.integers(-128, 128, b_shape).astype(dtype)
    got = float_matmul(a, b)
    assert got.dtype == dtype and got.shape == (a @ b).shape
    np.testing.assert_array_equal(got, a @ b)
    if a.ndim == 2 and a.shape[0] > 1:  # a column slice: not contiguous
        np.testing.assert_array_equal(float_matmul(a[:, 1:], b[1:]), a[:, 1:] @ b[1:])
    b.flags.writeable = False  # a frozen parameter
    np.testing.assert_array_equal(float_matmul(a, b), a @ b)


def test_lowered_torch_float32_precision_falls_back_to_exact_blas() -> None:
    """With ``torch.set_float32_matmul_precision("medium")`` torch multiplies float32 in
    bf16 on CPU (inexact for these odd 9-bit integers, whose sums float32 holds exactly);
    float_matmul then leaves float32 products to the exact fallback, and float64 ones stay
    on torch."""
    rng = np.random.default_rng(1)
    a, b = ((rng.integers(129, 256, shape) * 2 + 1) * rng.choice([-1, 1], shape)
            for shape in ((256, 64), (64, 256)))
    a, b = a.astype(np.float32), b.astype(np.float32)
    exact = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32)
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        lossy = torch.from_numpy(a) @ torch.from_numpy(b)
        assert not np.array_equal(lossy.numpy(), exact)  # the hazard is real here
        assert not torch_is_exact(np.float32) and torch_is_exact(np.float64)
        np.testing.assert_array_equal(float_matmul(a, b), exact)
    finally:
        torch.set_float32_matmul_precision(before)
    assert torch_is_exact(np.float32)
