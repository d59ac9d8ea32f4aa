"""Float BLAS products for the exact matmul paths.

A product runs on torch's CPU matmul (MKL, on torch's own threads) wherever torch computes
its dtype in full precision: always for float64, and for float32 unless torch has been told
to trade float32 precision for speed (``torch.set_float32_matmul_precision`` below
``"highest"``, or oneDNN's ``fp32_precision`` set to bf16 / TF32), which would make the
products inexact. Measured on deit-tiny (``benchmarks/bench_paths.py``: one process, runs
alternated): the w16a16 simulation took 0.89x (median of six runs, 0.88x to 1.05x), and
w8a8's 0.97x to 0.99x, the time it took with the fallback below.

The fallback runs on numba's worker threads with one BLAS thread per caller: after every
multi-threaded call, OpenBLAS's worker threads busy-wait for new work (for up to ``2**28``
cycles by default) and on a small machine starve the compiled kernels that run next, so a
large product is split by rows (or by stacked items) over numba's parallel loop, each part
one single-threaded ``np.dot``.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (numba's np.dot calls this BLAS: load it first)
from threadpoolctl import ThreadpoolController

from vitaccel.fixed._kernels import compiled_pair

__all__ = ["codes_as", "float_matmul", "torch_is_exact"]

_SPLIT_MACS = 1 << 21
"""Products below this many multiply-accumulates run on the calling thread alone."""


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # inspects the loaded BLAS libraries once


def _row_parts(a, b, out, bounds):
    """``out[lo:hi] = a[lo:hi] @ b`` for each consecutive pair of ``bounds`` (2-D, C order)."""
    for p in numba.prange(bounds.size - 1):
        lo, hi = bounds[p], bounds[p + 1]
        out[lo:hi] = np.dot(a[lo:hi], b)


def _items(a, b, out):
    """``out[g] = a[g] @ b[g]`` for every item of a stack (3-D, C order)."""
    for g in numba.prange(a.shape[0]):
        out[g] = np.dot(a[g], b[g])


def _copy_codes(flat, out):
    """``out[:] = flat`` (int64 to ``out``'s type) and the (min, max) of ``flat``, in one
    pass."""
    lo = flat[0]
    hi = lo
    for i in numba.prange(flat.size):
        v = flat[i]
        out[i] = v
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi


_ROWS = compiled_pair(_row_parts)
_ITEMS = compiled_pair(_items)
_COPY_CODES = compiled_pair(_copy_codes)


def codes_as(a: np.ndarray, dtype) -> tuple[np.ndarray, int, int]:
    """A copy as ``dtype`` (a float type, or int8; same shape) of a non-empty C-contiguous
    int64 array and the (min, max) of its codes, in one pass (parallel for large arrays).
    The copy is exact when every code is inside the float's exact range (int8 keeps each
    code's low byte: exact in [-128, 127]); the caller checks that with the range."""
    out = np.empty(a.shape, dtype)
    lo, hi = _COPY_CODES[a.size >= _SPLIT_MACS >> 4](a.reshape(-1), out.reshape(-1))
    return out, int(lo), int(hi)


def torch_is_exact(dtype) -> bool:
    """Whether torch's CPU matmul computes ``dtype`` (float32 or float64) products and sums
    in that dtype's own precision (see the module docstring)."""
    if dtype == np.float64:
        return True
    import torch

    onednn = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    return (torch.get_float32_matmul_precision() == "highest"
            and getattr(onednn, "fp32_precision", "none") in ("none", "ieee"))


def float_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for float arrays a (M, K) @ b (K, N) or stacked a (G, M, K) @ b (G, K, N).

    The result is what ``np.matmul`` returns; the caller ensures it is exact (integer
    operands whose partial sums stay below the float's exact range), so the order in which
    the library adds the products cannot change a bit.
    """
    dtype = np.result_type(a, b)
    shape = (*a.shape[:-1], b.shape[-1])
    if 0 in shape or a.shape[-1] == 0:
        return np.zeros(shape, dtype)
    a = np.ascontiguousarray(a, dtype)
    b = np.ascontiguousarray(b, dtype)
    if torch_is_exact(dtype):
        import torch

        # torch only reads them; read-only operands (frozen parameters) are copied
        ta, tb = (torch.from_numpy(v if v.flags.writeable else v.copy()) for v in (a, b))
        return torch.matmul(ta, tb).numpy()
    if a.ndim == 3 and a.shape[0] == 1:
        return float_matmul(a[0], b[0])[None]
    out = np.empty(shape, dtype)
    parallel = out.size * a.shape[-1] >= _SPLIT_MACS and numba.get_num_threads() > 1
    with _controller().limit(limits=1, user_api="blas"):
        if a.ndim == 3:
            _ITEMS[parallel and a.shape[0] > 1](a, b, out)
        else:
            parts = min(numba.get_num_threads(), a.shape[0]) if parallel else 1
            bounds = np.linspace(0, a.shape[0], parts + 1).astype(np.int64)
            _ROWS[parts > 1](a, b, out, bounds)
    return out
