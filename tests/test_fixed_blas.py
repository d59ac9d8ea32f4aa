"""float_matmul: the split BLAS product equals numpy's, in this process and in a forked one."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from vitaccel.fixed import _blas
from vitaccel.fixed._blas import float_matmul


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [((700, 64), (64, 300)), ((5, 120, 64), (5, 64, 90)), ((1, 600, 80), (1, 80, 70)),
     ((3, 4), (4, 2)), ((0, 4), (4, 3)), ((2, 0, 4), (2, 4, 3))],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_product_equals_numpy(a_shape, b_shape, dtype) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, a_shape).astype(dtype)
    b = rng.integers(-128, 128, b_shape).astype(dtype)
    got = float_matmul(a, b)
    assert got.dtype == dtype and got.shape == (a @ b).shape
    np.testing.assert_array_equal(got, a @ b)


def _child(queue) -> None:
    a = np.arange(800 * 64, dtype=np.float64).reshape(800, 64) % 97
    queue.put(bool(np.array_equal(float_matmul(a, a.T[:, :500]), a @ a.T[:, :500])))


def test_a_forked_child_gets_its_own_workers() -> None:
    a = np.ones((900, 64))
    float_matmul(a, a.T)  # the parent's pool exists before the fork
    assert _blas._pool is not None
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue,))
    proc.start()
    assert queue.get(timeout=60) is True
    proc.join(timeout=60)
    assert proc.exitcode == 0
