"""Shift/add (power-of-two) kernels for the linear layers of ShiftAddViT-style models."""

from __future__ import annotations

from typing import Any

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.ir._build import Plan, Role

__all__ = ["shift_kernel", "SIGN_FMT", "EXP_FMT"]

SIGN_FMT = FixedType.integer(2)
"""Format of the ``shift_sign`` parameter (-1, 0, +1)."""

EXP_FMT = FixedType.integer(8)
"""Format of the ``shift_exp`` parameter (the power of two of each weight)."""


def shift_kernel(plan: Plan, lin: Any) -> Plan:
    """Turn the linear ``plan`` of a ``ShiftLinear`` layer into a shift-kernel linear.

    The plan's weight matrix (the layer's power-of-two weights, with any folded scale) must be
    ``sign * 2**exp`` exactly; then the plan gets ``kernel="shift"``, ``product_t`` = role
    ``shift.term`` (the format each shifted term is assigned to), params ``shift_sign``
    (``ap_int<2>``) and ``shift_exp`` (``ap_int<8>``; p_lo where the sign is 0), and its
    ``weight`` is stored exactly as ``ap_fixed<I - p_lo, I>`` with ``I = max(p_hi + 2, 1)``
    (p_lo/p_hi: smallest/largest exponent used), ignoring the precision's ``weight`` role.
    A folded scale that is not a power of two (an attention head width that is not a power
    of four) keeps the MAC kernel. Other layers are returned unchanged.
    """
    if not hasattr(lin, "shift_params"):
        return plan
    w = np.asarray(plan.params["weight"][0], dtype=np.float64)
    nz = w != 0
    mant, e2 = np.frexp(np.abs(w))
    if not np.all(mant[nz] == 0.5):
        return plan
    exp = e2.astype(np.int64) - 1
    p_lo = int(exp[nz].min()) if nz.any() else 0
    p_hi = int(exp[nz].max()) if nz.any() else 0
    if max(-p_lo, p_hi) > EXP_FMT.max_raw:
        raise UsageError(f"{plan.name}: power-of-two exponents {p_lo}..{p_hi} do not fit "
                         f"{EXP_FMT}")
    exp = np.where(nz, exp, p_lo)
    int_bits = max(p_hi + 2, 1)
    w_t = FixedType(width=int_bits - p_lo, int_bits=int_bits)
    plan.params["weight"] = (w, w_t)
    plan.params["shift_sign"] = (np.sign(w).astype(np.int64), SIGN_FMT)
    plan.params["shift_exp"] = (exp, EXP_FMT)
    plan.attrs["kernel"] = "shift"
    plan.attrs["product_t"] = Role("shift.term")
    return plan
