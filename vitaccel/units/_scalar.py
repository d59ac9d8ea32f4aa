"""Compiled scalar twins of the integer building blocks in :mod:`vitaccel.units._ops`.

Fused unit kernels (one compiled pass per unit) call these per element; each is the exact
scalar form of the vectorised block it names, and the tests compare the two.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from vitaccel.units._ops import _SHIFT_WORD_BITS

__all__ = ["leading_one_one", "shift_floor_one"]


@njit(cache=True)
def shift_floor_one(v, k):
    """:func:`~vitaccel.units._ops.shift_floor` for one int64 code ``v`` and shift ``k``."""
    if k < 0:
        return v >> min(-k, 63)
    if v == 0:
        return np.int64(0)
    limit = np.int64(1) << (_SHIFT_WORD_BITS - 1)
    kl = min(k, 62)
    if abs(v) < (limit >> kl):
        return v << kl
    return -limit if v < 0 else limit


@njit(cache=True)
def leading_one_one(v):
    """:func:`~vitaccel.units._ops.leading_one` for one positive int64 code: floor(log2(v))."""
    e = np.int64(0)
    while e < 62 and (np.int64(1) << (e + 1)) <= v:
        e += 1
    return e
