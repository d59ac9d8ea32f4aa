"""Exact integer products on int8 GEMM units: codes split into balanced base-256 digits.

A code ``x`` of at most four bytes is ``sum_l x_l * 256**l`` with digits (limbs) ``x_l`` in
[-128, 127]; ``L`` limbs hold every code in ``[-128 * r, 127 * r]``, ``r = (256**L - 1) /
255`` (one limb: int8 itself; two: [-32896, 32639]). Then::

    x @ w = sum_s 256**s * sum_{i + j = s} x_i @ w_j

and each inner sum is one int8 GEMM with int32 accumulation (``torch._int_mm``: the CPU's
VNNI / AMX units) over the limbs concatenated along K: ``[x_i0 | ... | x_i1] @ [w_j0; ...;
w_j1]``. The ``Lx + Lw - 1`` parts (P, M, N) are combined in int64 by the write-back
(:func:`vitaccel.fixed._epilogue.finish_codes`), part ``s`` in units of ``256**s``. Exact
while every part's partial sums stay inside int32 (:func:`int8_limbs` checks).
"""

from __future__ import annotations

import numba
import numpy as np

from vitaccel.fixed._blas import codes_as
from vitaccel.fixed._kernels import compiled_pair

__all__ = ["MAX_LIMBS", "codes_limbs", "int8_limbs", "limb_count", "limb_product"]

MAX_LIMBS = 4
_INT32_MAX = (1 << 31) - 1
_PARALLEL_MIN = 1 << 17  # codes from which the digit split runs in parallel


def limb_count(lo: int, hi: int) -> int:
    """The fewest limbs (at most :data:`MAX_LIMBS`) whose digits hold codes in [lo, hi], or
    0 if none do."""
    for n in range(1, MAX_LIMBS + 1):
        r = ((1 << (8 * n)) - 1) // 255
        if lo >= -128 * r and hi <= 127 * r:
            return n
    return 0


def int8_limbs(x_range: tuple[int, int], w_range: tuple[int, int],
               k_len: int) -> tuple[int, int] | None:
    """Limb counts (Lx, Lw) of an exact int8-limb product of codes in ``x_range`` and
    ``w_range`` over K = ``k_len`` terms, or None: more than four limbs, a part whose
    partial sums could leave int32, or a total beyond 2**62."""
    nx, nw = limb_count(*x_range), limb_count(*w_range)
    if not (nx and nw):
        return None
    x_abs = max(-x_range[0], x_range[1]) if nx == 1 else 128
    w_abs = max(-w_range[0], w_range[1]) if nw == 1 else 128
    p_abs = max(abs(a * b) for a in x_range for b in w_range)
    if min(nx, nw) * k_len * x_abs * w_abs > _INT32_MAX or k_len * p_abs >= 1 << 62:
        return None
    return nx, nw


def _digits(a, out):
    """Balanced base-256 digits of int64 codes a (R, C) into out (R, L, C) int8 and the
    (min, max) of ``a``; exact where the codes lie in the range of L limbs."""
    lo = a[0, 0]
    hi = lo
    for r in numba.prange(a.shape[0]):
        for c in range(a.shape[1]):
            v = a[r, c]
            lo = min(lo, v)
            hi = max(hi, v)
            for limb in range(out.shape[1]):
                d = ((v + 128) & 255) - 128
                out[r, limb, c] = d
                v = (v - d) >> 8
    return lo, hi


_DIGITS = compiled_pair(_digits)


def codes_limbs(a: np.ndarray, n: int, rows: bool) -> tuple[np.ndarray, int, int]:
    """``n`` int8 limbs of a C-contiguous int64 array, and the (min, max) of its codes
    ((0, 0) if empty), in one pass (parallel for large arrays); exact where the codes lie in
    the range of ``n`` limbs (the caller checks with the range).

    ``rows``: an x operand (..., K): limbs as (R, n, K), row r's limbs side by side along
    K; else a w operand (K, N): limbs as (n, K, N).
    """
    a2 = a.reshape(int(np.prod(a.shape[:-1])), a.shape[-1]) if rows else a.reshape(1, -1)
    if a.size == 0:
        out, lo, hi = np.zeros((a2.shape[0], n, a2.shape[1]), np.int8), 0, 0
    elif n == 1:  # the digit is the low byte: a plain (vectorised) copy
        out, lo, hi = codes_as(a2, np.int8)
        out = out.reshape(a2.shape[0], 1, a2.shape[1])
    else:
        out = np.empty((a2.shape[0], n, a2.shape[1]), np.int8)
        lo, hi = _DIGITS[a.size >= _PARALLEL_MIN](a2, out)
    return (out if rows else out.reshape(n, *a.shape)), int(lo), int(hi)


def limb_product(x_limbs: np.ndarray, w_limbs: np.ndarray) -> np.ndarray:
    """The int32 parts (Lx + Lw - 1, M, N) of ``x @ w`` from limbs x (M, Lx, K) and
    w (Lw, K, N) (:func:`codes_limbs`); part ``s`` holds ``sum_{i + j = s} x_i @ w_j``."""
    import torch  # the fixed-point core imports torch only when it runs an int8 product

    m_rows, nx, k_len = x_limbs.shape
    nw, _, n_cols = w_limbs.shape
    parts = np.empty((nx + nw - 1, m_rows, n_cols), np.int32)
    if parts.size == 0:
        return parts
    xv = torch.from_numpy(x_limbs.reshape(m_rows, nx * k_len))
    for s in range(nx + nw - 1):
        i0, i1 = max(0, s - nw + 1), min(s, nx - 1)
        w_cat = np.ascontiguousarray(w_limbs[s - i1: s - i0 + 1][::-1]).reshape(-1, n_cols)
        torch._int_mm(xv[:, i0 * k_len: (i1 + 1) * k_len], torch.from_numpy(w_cat),
                      out=torch.from_numpy(parts[s]))
    return parts
