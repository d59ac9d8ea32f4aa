"""GELU as the hardware computes it, on raw integer codes (element-wise).

Roles (formats supplied by the precision configuration):

============== ==========================================================================
``gelu.table`` delta_table: the delta ROM (unsigned, < 0.17); tanh: the tanh ROM ([0, 1])
``gelu.lut``   lut: the GELU ROM (signed, needs the integer bits of x_max)
``gelu.poly``  tanh: the polynomial registers x^2, x^3, x + c x^3 and the tanh argument
``gelu.out``   output
============== ==========================================================================

Each ROM format is also the format of the interpolated value read from it.

The float function every variant approximates is the erf form ``x * Phi(x)``
(:meth:`Gelu.reference`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from vitaccel.fixed import FixedType, fixed_add, fixed_mul, fixed_sub, sub_type
from vitaccel.units import _gelu_kernels
from vitaccel.units._fused import HALF_T, ONE_T, abs_type
from vitaccel.units._ops import assign, cast_counted, int_codes, mul_assign
from vitaccel.units._variant import Variant
from vitaccel.units.tables import Table, gelu_delta_table, gelu_float, gelu_table, tanh_table

__all__ = ["GELU", "DeltaTableGelu", "Gelu", "LutGelu", "TableGelu", "TanhGelu"]


def _select(
    mask: np.ndarray,
    when_true: tuple[np.ndarray, FixedType],
    when_false: tuple[np.ndarray, FixedType],
    out_t: FixedType,
    overflow: dict[str, int] | None,
    role: str,
) -> np.ndarray:
    """``out_t`` assignment of one of two exact values per element (only the chosen counts)."""
    out = np.empty(mask.shape, dtype=np.int64)
    for m, (raw, t) in ((mask, when_true), (~mask, when_false)):
        if m.any():
            out[m] = assign(out_t, np.broadcast_to(raw, mask.shape)[m], t, overflow, role)
    return out


class Gelu(Variant):
    """Interface of every GELU variant (variants are frozen dataclasses with an ``out_t``).

    Subclasses implement ``_forward`` on validated int64 codes.
    """

    KIND: ClassVar[str] = "gelu"

    def forward(
        self, x_raw: np.ndarray, x_t: FixedType, overflow: dict[str, int] | None = None
    ) -> np.ndarray:
        """GELU of codes ``x_raw`` (any shape) of ``x_t``; codes of ``out_t``.

        ``overflow`` (optional) gets the overflow counts per role added.
        """
        return self._forward(int_codes(x_raw, x_t, "gelu input"), x_t, overflow)

    @staticmethod
    def reference(x: np.ndarray) -> np.ndarray:
        """Float64 GELU, erf form ``x * Phi(x)``."""
        return gelu_float(x)

    def _forward(self, x: np.ndarray, x_t: FixedType,
                 overflow: dict[str, int] | None) -> np.ndarray:
        raise NotImplementedError

    def _forward_assigned(self, x: np.ndarray, x_t: FixedType, dst: FixedType, role: str,
                          overflow: dict[str, int] | None) -> np.ndarray:
        """GELU of validated int64 codes ``x`` of ``x_t`` (the caller's own assignment to
        ``x_t`` produced them), then assigned to ``dst`` with its overflowed values counted
        under ``role``: codes of ``dst``. The same bits and counts as :meth:`forward` then
        that assignment (object codes for a 64-bit unsigned ``dst``)."""
        return cast_counted(dst, self._forward(x, x_t, overflow), self.out_t, overflow, role)


@dataclass(frozen=True, eq=False)
class TableGelu(Gelu):
    """GELU variants built on one interpolated ROM.

    ``_reference_forward`` is each variant's definition, vectorised; ``_forward`` runs the
    same datapath as one compiled pass per element (:mod:`vitaccel.units._gelu_kernels`,
    proven equal by the tests) whenever its intermediates have int64 codes.

    Attributes
    ----------
    table_t, out_t : FixedType
        Formats of the ROM (role ``gelu.table``, or ``gelu.lut``) and of ``gelu.out``.
    step_log2 : int
        ROM step 2**step_log2.
    fraction_bits : int or None
        Interpolation fraction width; None = ``F(table_t) + step_log2`` (at least 1).
    """

    table_t: FixedType
    out_t: FixedType
    step_log2: int = -5
    fraction_bits: int | None = None

    @property
    def interp_fraction_bits(self) -> int:
        """The fraction width actually used by the ROM."""
        if self.fraction_bits is not None:
            return self.fraction_bits
        return max(1, self.table_t.frac_bits + self.step_log2)

    def _forward(self, x, x_t, overflow):
        y = self._fused(x, x_t, overflow, None)
        return self._reference_forward(x, x_t, overflow) if y is None else y

    def _forward_assigned(self, x, x_t, dst, role, overflow):
        y = self._fused(x, x_t, overflow, (dst, role))
        return super()._forward_assigned(x, x_t, dst, role, overflow) if y is None else y

    def _fused(self, x: np.ndarray, x_t: FixedType, overflow: dict[str, int] | None,
               then: tuple[FixedType, str] | None) -> np.ndarray | None:
        """The variant's fused kernel (:mod:`vitaccel.units._gelu_kernels`), or None."""
        raise NotImplementedError

    def _reference_forward(self, x: np.ndarray, x_t: FixedType,
                           overflow: dict[str, int] | None) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class DeltaTableGelu(TableGelu):
    """Edge-MoE: ``gelu(x) = relu(x) - delta(|x|)``, ``delta(t) = t * Phi(-t)`` from a ROM.

    ::

        if |x| >= t_max:  y = out_t(relu(x))
        else:             d = table_t(interp(delta, |x|));  y = out_t(relu(x) - d)

    Defaults (step 1/32, t_max 5.5, ``gelu.table = ap_ufixed<22,0>``) give Edge-MoE's
    177-entry ROM and its 17-bit interpolation fraction.
    """

    NAME: ClassVar[str] = "delta_table"
    ROLE_FIELDS: ClassVar[dict[str, str]] = {"gelu.table": "table_t", "gelu.out": "out_t"}

    t_max: float = 5.5
    table: Table = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", gelu_delta_table(
            self.table_t, step_log2=self.step_log2, t_max=self.t_max,
            fraction_bits=self.interp_fraction_bits))

    def _fused(self, x, x_t, overflow, then):
        return _gelu_kernels.delta_table(self, x, x_t, overflow, then)

    def _reference_forward(self, x: np.ndarray, x_t: FixedType,
                           overflow: dict[str, int] | None) -> np.ndarray:
        """The vectorised definition of the class docstring (the fused kernel's reference)."""
        abs_t = abs_type(x_t)
        a = np.abs(x)
        beyond = self.table.offset(a, abs_t) == (self.table.size - 1) << self.table.fraction_bits
        relu = np.maximum(x, 0)
        d = np.zeros_like(x)
        if (~beyond).any():
            d[~beyond] = self.table.interp(a[~beyond], abs_t, self.table_t, overflow=overflow,
                                           role="gelu.table")
        diff, diff_t = fixed_sub(relu, x_t, d, self.table_t)
        return _select(beyond, (relu, x_t), (diff, diff_t), self.out_t, overflow, "gelu.out")


@dataclass(frozen=True, eq=False)
class LutGelu(TableGelu):
    """GELU itself from a ROM over [x_min, x_max]::

        x <  x_min:  y = 0
        x >= x_max:  y = out_t(x)
        else:        y = out_t(interp(gelu, x))      (table value in gelu.lut, signed)
    """

    NAME: ClassVar[str] = "lut"
    ROLE_FIELDS: ClassVar[dict[str, str]] = {"gelu.lut": "table_t", "gelu.out": "out_t"}

    x_min: float = -6.0
    x_max: float = 6.0
    table: Table = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", gelu_table(
            self.table_t, x_min=self.x_min, x_max=self.x_max, step_log2=self.step_log2,
            fraction_bits=self.interp_fraction_bits))

    def _fused(self, x, x_t, overflow, then):
        return _gelu_kernels.lut(self, x, x_t, overflow, then)

    def _reference_forward(self, x: np.ndarray, x_t: FixedType,
                           overflow: dict[str, int] | None) -> np.ndarray:
        """The vectorised definition of the class docstring (the fused kernel's reference)."""
        tab = self.table
        pos = tab.position(x, x_t)
        above = pos >= (tab.size - 1) << tab.fraction_bits
        inside = (pos >= 0) & ~above
        v = np.zeros_like(x)
        if inside.any():
            v[inside] = tab.interp(x[inside], x_t, self.table_t, overflow=overflow,
                                   role="gelu.lut")
        out = _select(above, (x, x_t), (v, self.table_t), self.out_t, overflow, "gelu.out")
        return np.where(pos < 0, 0, out)


@dataclass(frozen=True, eq=False)
class TanhGelu(TableGelu):
    """Tanh form ``0.5 x (1 + tanh(C1 (x + C2 x^3)))``, C1 = sqrt(2/pi), C2 = 0.044715.

    Exact sequence (``poly`` = role ``gelu.poly``; C1, C2 rounded to nearest in
    ``ap_ufixed<1 + const_frac_bits, 1>``; ``xc = clamp(x, -poly_clip, poly_clip)`` on x's grid,
    so the cube cannot overflow for large inputs)::

        x2 = poly(xc * xc);  x3 = poly(x2 * xc);  v = poly(xc + C2 * x3);  u = poly(C1 * v)
        th = table_t(interp(tanh, |u|)), negated for u < 0   (|u| >= tanh_t_max: last entry)
        y  = out_t(x * (1 + th) * 0.5)                       (exact product, one assignment)
    """

    NAME: ClassVar[str] = "tanh"
    ROLE_FIELDS: ClassVar[dict[str, str]] = {
        "gelu.poly": "poly_t", "gelu.table": "table_t", "gelu.out": "out_t"}

    poly_t: FixedType = field(kw_only=True)
    tanh_t_max: float = 8.0
    poly_clip: float = 8.0
    const_frac_bits: int = 16
    table: Table = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", tanh_table(
            self.table_t, t_max=self.tanh_t_max, step_log2=self.step_log2,
            fraction_bits=self.interp_fraction_bits))

    @property
    def const_t(self) -> FixedType:
        """Format of the constants C1 and C2."""
        return FixedType(1 + self.const_frac_bits, 1, False)

    @property
    def c1_raw(self) -> int:
        """Code of sqrt(2/pi) in ``const_t``."""
        return int(math.floor(math.sqrt(2.0 / math.pi) * 2**self.const_frac_bits + 0.5))

    @property
    def c2_raw(self) -> int:
        """Code of 0.044715 in ``const_t``."""
        return int(math.floor(0.044715 * 2**self.const_frac_bits + 0.5))

    def _poly(self, a, a_t, b, b_t, overflow):
        return mul_assign(self.poly_t, a, a_t, b, b_t, overflow, "gelu.poly")

    def _fused(self, x, x_t, overflow, then):
        return _gelu_kernels.tanh(self, x, x_t, overflow, then)

    def _reference_forward(self, x: np.ndarray, x_t: FixedType,
                           overflow: dict[str, int] | None) -> np.ndarray:
        """The vectorised definition of the class docstring (the fused kernel's reference)."""
        p_t, c_t = self.poly_t, self.const_t
        clip = int(math.floor(math.ldexp(self.poly_clip, x_t.frac_bits)))
        xc = np.clip(x, max(-clip, x_t.min_raw), min(clip, x_t.max_raw))
        x2 = self._poly(xc, x_t, xc, x_t, overflow)
        x3 = self._poly(x2, p_t, xc, x_t, overflow)
        c2x3, c2x3_t = fixed_mul(np.int64(self.c2_raw), c_t, x3, p_t)
        v = assign(p_t, *fixed_add(xc, x_t, c2x3, c2x3_t), overflow, "gelu.poly")
        u = self._poly(np.int64(self.c1_raw), c_t, v, p_t, overflow)
        mag = self.table.interp(np.abs(u), abs_type(p_t), self.table_t, overflow=overflow,
                                role="gelu.table")
        th_t = sub_type(self.table_t, self.table_t)
        th = np.where(u < 0, -mag, mag)
        onep, onep_t = fixed_add(np.int64(1), ONE_T, th, th_t)
        prod, prod_t = fixed_mul(x, x_t, onep, onep_t)
        half, half_t = fixed_mul(prod, prod_t, np.int64(1), HALF_T)
        return assign(self.out_t, half, half_t, overflow, "gelu.out")


GELU: dict[str, type[Gelu]] = {cls.NAME: cls for cls in (DeltaTableGelu, LutGelu, TanhGelu)}

# The integer-only variants (ibert, ivit) add themselves to GELU on import.
import vitaccel.units.gelu_int  # noqa: E402,F401
