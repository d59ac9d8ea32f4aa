"""Float BLAS products for the exact matmul paths, without OpenBLAS's spinning thread pool.

After every multi-threaded call, OpenBLAS's worker threads busy-wait for new work (for up to
``2**28`` cycles by default), and on a small machine they starve the compiled kernels that
run next: the whole deit-tiny w8a8 simulation took 1.7x longer with them
(``benchmarks/bench_sim.py``). So BLAS here always runs on one BLAS thread per caller, and a
large product is split by rows (or by stacked items) over a few Python worker threads (numpy
releases the GIL in BLAS); idle workers sleep on a queue instead of spinning.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

__all__ = ["float_matmul"]

_SPLIT_MACS = 1 << 21
"""Products below this many multiply-accumulates run on the calling thread alone."""


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # inspects the loaded BLAS libraries once


_pool: tuple[int, ThreadPoolExecutor] | None = None


def _workers() -> ThreadPoolExecutor:
    """The worker pool of this process (a forked child starts its own)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(numba.config.NUMBA_NUM_THREADS,
                                                 thread_name_prefix="vitaccel-blas"))
    return _pool[1]


def float_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for float arrays a (M, K) @ b (K, N) or stacked a (G, M, K) @ b (G, K, N).

    The result is what ``np.matmul`` returns; the caller ensures it is exact (integer
    operands whose partial sums stay below the float's exact range), so splitting the work
    cannot change a bit.
    """
    if a.ndim == 3 and a.shape[0] == 1:
        return float_matmul(a[0], b[0])[None]
    out = np.empty((*a.shape[:-1], b.shape[-1]), np.result_type(a, b))
    m_rows, k_len = a.shape[-2:]
    n_parts = min(numba.get_num_threads(), a.shape[0] if a.ndim == 3 else m_rows)
    with _controller().limit(limits=1, user_api="blas"):
        if n_parts < 2 or out.size * k_len < _SPLIT_MACS:
            np.matmul(a, b, out=out)
            return out
        bounds = np.linspace(0, a.shape[0] if a.ndim == 3 else m_rows, n_parts + 1).astype(int)
        parts = [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        if a.ndim == 3:  # split the stack of items
            jobs = [(a[s], b[s], out[s]) for s in parts]
        else:
            jobs = [(a[s], b, out[s]) for s in parts]
        for future in [_workers().submit(np.matmul, x, y, out=o) for x, y, o in jobs]:
            future.result()
    return out
