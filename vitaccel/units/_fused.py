"""Shared pieces of the fused unit kernels (:mod:`vitaccel.units._gelu_kernels`,
:mod:`vitaccel.units._layernorm_kernels`): format checks, packed assignments, overflow counts.

A fused kernel computes a unit's whole datapath per element (or per row) in int64; it is
taken only when every exact intermediate of the vectorised definition, and every format
assigned to, has int64 codes, which these helpers decide from the formats alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numba import njit

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, mul_type
from vitaccel.fixed._assign import assign_one, assign_params
from vitaccel.fixed._kernels import column_sums
from vitaccel.fixed._specialise import cast_at
from vitaccel.units._ops import count

__all__ = [
    "CHUNK", "HALF_T", "ONE_T", "THREE_T", "abs_type", "add_counts", "cast_tuples",
    "exact_format", "mul_fits", "then_at", "then_counts", "then_one", "then_params",
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
    for role, n in zip(roles, column_sums(counts), strict=True):
        count(overflow, role, n)


# A kernel's optional final assignment (``then``): its output assigned to the consumer's
# format in the same pass, packed as (applied?, assignment) after the kernel's parameters.
_NO_THEN = assign_params(0, 1, FixedType(1, 1))


def then_params(out_t: FixedType, dst: FixedType | None) -> tuple | None:
    """The packed final assignment ``out_t -> dst`` (:func:`then_at`): ``(0, placeholder)``
    without ``dst``, None when ``dst`` codes do not fit int64."""
    if dst is None:
        return 0, _NO_THEN
    cp = cast_tuples([(out_t, dst)])
    return None if cp is None else (1, cp[0])


def then_counts(overflow: dict[str, int] | None, roles: Sequence[str], counts: np.ndarray,
                then: tuple[FixedType, str] | None) -> None:
    """:func:`add_counts` for a kernel whose last column counts its final assignment: the
    columns of ``roles``, and with ``then = (dst, role)`` the last column under ``role``."""
    add_counts(overflow, roles, counts[:, :len(roles)])
    if then is not None:
        add_counts(overflow, then[1:], counts[:, -1:])


@njit(cache=True)
def then_at(p, i):
    """The final assignment packed at ``p[i:]`` (:func:`then_params`): (applied?, params)."""
    c, _ = cast_at(p, i + 1)
    return p[i] != 0, c


@njit(cache=True, inline="always")
def then_one(y, then):
    """``y`` assigned by the final assignment ``then`` (:func:`then_at`) when it has one:
    (code, overflow count)."""
    apply, c = then
    if apply:
        z, o = assign_one(y, c)
        return z, int(o)
    return y, 0
