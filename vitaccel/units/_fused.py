"""Shared pieces of the fused unit kernels (:mod:`vitaccel.units._gelu_kernels`,
:mod:`vitaccel.units._layernorm_kernels`): format checks, packed assignments, overflow counts.

A fused kernel computes a unit's whole datapath per element (or per row) in int64; it is
taken only when every exact intermediate of the vectorised definition, and every format
assigned to, has int64 codes, which these helpers decide from the formats alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, mul_type
from vitaccel.fixed._assign import assign_params
from vitaccel.units._ops import count

__all__ = [
    "CHUNK", "HALF_T", "ONE_T", "THREE_T", "abs_type", "add_counts", "cast_tuples",
    "exact_format", "mul_fits",
]

CHUNK = 4096
"""Elements per work item of an element-wise fused kernel (one overflow count row each)."""

# Formats of the constants of the datapaths (shared by the vectorised and the fused code).
ONE_T = FixedType(1, 1, False)  # the constant 1
HALF_T = FixedType(1, 0, False)  # the constant 0.5 (code 1)
THREE_T = FixedType(2, 2, False)  # the constant 3 (code 3)


def abs_type(x_t: FixedType) -> FixedType:
    """Format holding |x| exactly (one more integer bit for a signed x)."""
    return FixedType(x_t.width + 1, x_t.int_bits + 1, True) if x_t.signed else x_t


def exact_format(rule: Callable[..., FixedType], *formats: FixedType) -> FixedType | None:
    """``rule(*formats)`` (``add_type``, ``sub_type``, ``mul_type``) when its codes fit int64.

    Returns
    -------
    FixedType or None
        The exact result format, or None when it is wider than 64 bits (the rule raises) or is
        a 64-bit unsigned format.
    """
    try:
        t = rule(*formats)
    except UsageError:
        return None
    return t if t.fits_int64 else None


def mul_fits(a_t: FixedType, b_t: FixedType) -> bool:
    """True when ``mul_assign`` of ``a_t`` by ``b_t`` forms its exact product in int64."""
    return a_t.width + b_t.width <= 64 and mul_type(a_t, b_t).fits_int64


def cast_tuples(pairs: Sequence[tuple[FixedType, FixedType]]) -> tuple[tuple[int, ...], ...] | None:
    """Packed parameters of the assignments ``dst x = (src) raw`` for
    :func:`~vitaccel.fixed._assign.assign_one`.

    Parameters
    ----------
    pairs : sequence of (FixedType, FixedType)
        ``(src, dst)`` of each assignment.

    Returns
    -------
    tuple of tuple of int, or None
        Per pair, the 14 ints of :func:`~vitaccel.fixed._kernels.cast_params`; None when a
        ``dst`` is a 64-bit unsigned format (its codes do not fit int64).
    """
    if not all(dst.fits_int64 for _, dst in pairs):
        return None
    return tuple(assign_params(src.frac_bits - dst.frac_bits, src.width, dst)
                 for src, dst in pairs)


def add_counts(overflow: dict[str, int] | None, roles: Sequence[str],
               counts: np.ndarray) -> None:
    """Add the column sums of ``counts`` (work items x roles) to ``overflow`` under ``roles``."""
    for role, n in zip(roles, counts.sum(axis=0).tolist(), strict=True):
        count(overflow, role, n)
