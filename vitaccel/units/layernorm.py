"""LayerNorm over the last axis as the hardware computes it, on raw integer codes.

Shared datapath (D = features; ``acc`` = exact accumulators ``ap_fixed<W + L, I + L>``,
L = ceil(log2 D), never overflow; ``/ D`` is an exact division by the constant D whose quotient
is rounded by the destination format, see ``vitaccel.units._ops.div_assign``)::

    mean  = mean_t(acc(sum x) / D)
    xc    = centered_t(x - mean)
    var   = var_t(acc(sum var_t(xc * xc)) / D)
    v     = var_t(var + EPS)                 EPS = eps rounded to nearest in var_t
    r     = rsqrt_t(1 / sqrt(v))             variant-specific
    xn    = norm_t(xc * r)
    y     = out_t(xn * gamma + beta)         gamma, beta in their own formats

Roles: ``layernorm.mean``, ``.centered``, ``.var``, ``.rsqrt``, ``.norm``, ``.out``, plus
``.rsqrt_table`` (variant ``rsqrt_table``) or ``.sqrt`` (variant ``isqrt``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, fixed_add, fixed_mul, fixed_sub
from vitaccel.units import _layernorm_kernels
from vitaccel.units._fused import HALF_T, THREE_T
from vitaccel.units._layernorm_kernels import RsqrtPlan
from vitaccel.units._ops import (
    assign,
    cast_counted,
    div_assign,
    int_codes,
    leading_one,
    mul_assign,
    scale_pow2,
    shift_floor,
)
from vitaccel.units._variant import Variant
from vitaccel.units.tables import Table, rsqrt_table

__all__ = ["LAYERNORM", "FixedLayerNorm", "IsqrtLayerNorm", "LayerNorm", "RsqrtTableLayerNorm"]

_WORD_BITS = 62


def _exact_sum(a: np.ndarray, a_t: FixedType, d: int, what: str) -> tuple[np.ndarray, FixedType]:
    """Exact sum over the last axis in ``ap_fixed<W + L, I + L>`` (L = ceil(log2 D))."""
    grow = (d - 1).bit_length()
    acc_t = FixedType(a_t.width + grow + (not a_t.signed), a_t.int_bits + grow + (not a_t.signed))
    if acc_t.width > 63:
        raise UsageError(f"layernorm: the exact {what} accumulator {acc_t} exceeds 63 bits; "
                         "use a narrower format")
    return a.sum(axis=-1, dtype=np.int64), acc_t


def _isqrt(v: np.ndarray) -> np.ndarray:
    """floor(sqrt(v)) of non-negative int64 codes (exact)."""
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    for _ in range(2):
        r = np.where(r * r > v, r - 1, r)
        r = np.where((r + 1) * (r + 1) <= v, r + 1, r)
    return r


class LayerNorm(Variant):
    """Interface of every LayerNorm variant (frozen dataclasses with an ``out_t``).

    ``forward(x_raw, x_t, gamma_raw, gamma_t, beta_raw, beta_t, overflow=None)`` and
    :meth:`reference`; subclasses implement ``forward``.
    """

    KIND: ClassVar[str] = "layernorm"

    def forward(
        self,
        x_raw: np.ndarray,
        x_t: FixedType,
        gamma_raw: np.ndarray,
        gamma_t: FixedType,
        beta_raw: np.ndarray,
        beta_t: FixedType,
        overflow: dict[str, int] | None = None,
    ) -> np.ndarray:
        """LayerNorm of codes x (..., D) with gamma, beta (D,); codes of ``out_t``."""
        raise NotImplementedError

    def forward_assigned(self, x_raw: np.ndarray, x_t: FixedType, gamma_raw: np.ndarray,
                         gamma_t: FixedType, beta_raw: np.ndarray, beta_t: FixedType,
                         dst: FixedType, role: str,
                         overflow: dict[str, int] | None = None) -> np.ndarray:
        """:meth:`forward`, then its output assigned to ``dst`` (overflowed values of that
        assignment counted under ``role``): codes of ``dst`` (object codes for a 64-bit
        unsigned ``dst``). Variants with a fused datapath make the assignment in its pass."""
        y = self.forward(x_raw, x_t, gamma_raw, gamma_t, beta_raw, beta_t, overflow=overflow)
        return cast_counted(dst, y, self.out_t, overflow, role)

    @staticmethod
    def reference(
        x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-6
    ) -> np.ndarray:
        """Float64 LayerNorm over the last axis (biased variance, eps inside the sqrt)."""
        x = np.asarray(x, dtype=np.float64)
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * np.asarray(gamma) + np.asarray(beta)



def checked_inputs(x_raw: np.ndarray, x_t: FixedType, gamma_raw: np.ndarray, gamma_t: FixedType,
                   beta_raw: np.ndarray, beta_t: FixedType
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated int64 codes of x (..., D) and of gamma, beta (D,) for a LayerNorm variant."""
    x = int_codes(x_raw, x_t, "layernorm input")
    if x.ndim == 0 or x.shape[-1] == 0:
        raise UsageError(f"layernorm input: expected shape (..., D), D >= 1, got {x.shape}")
    d = x.shape[-1]
    g = int_codes(gamma_raw, gamma_t, "layernorm gamma")
    b = int_codes(beta_raw, beta_t, "layernorm beta")
    for name, a in (("gamma", g), ("beta", b)):
        if a.shape != (d,):
            raise UsageError(f"layernorm {name}: expected shape ({d},), got {a.shape}")
    return x, g, b

@dataclass(frozen=True, eq=False)
class FixedLayerNorm(LayerNorm):
    """The shared fixed-point datapath of the module docstring; subclasses give ``rsqrt``.

    Attributes
    ----------
    mean_t, centered_t, var_t, rsqrt_t, norm_t, out_t : FixedType
        Role formats (``layernorm.<role>``).
    eps : float
        Added to the variance (rounded to nearest in ``var_t``).

    Notes
    -----
    The division by D is exact, so a constant row (whose values ``mean_t`` holds) has
    ``mean = x``, ``xc = 0`` and gives ``out_t(beta)``.

    ``_reference_forward`` is the definition, vectorised; ``forward`` runs the same datapath
    as one compiled pass per call (:mod:`vitaccel.units._layernorm_kernels`, proven equal by
    the tests) when the variant plans a fused rsqrt and every intermediate has int64 codes.
    """

    mean_t: FixedType
    centered_t: FixedType
    var_t: FixedType
    rsqrt_t: FixedType
    norm_t: FixedType
    out_t: FixedType
    eps: float = 1e-6

    @property
    def eps_raw(self) -> int:
        """Code of EPS in ``var_t`` (rounded to nearest)."""
        return int(math.floor(math.ldexp(self.eps, self.var_t.frac_bits) + 0.5))

    def forward(
        self,
        x_raw: np.ndarray,
        x_t: FixedType,
        gamma_raw: np.ndarray,
        gamma_t: FixedType,
        beta_raw: np.ndarray,
        beta_t: FixedType,
        overflow: dict[str, int] | None = None,
    ) -> np.ndarray:
        """LayerNorm of codes x (..., D) with gamma, beta (D,); codes of ``out_t``."""
        x, g, b = checked_inputs(x_raw, x_t, gamma_raw, gamma_t, beta_raw, beta_t)
        y = self._fused(x, x_t, g, gamma_t, b, beta_t, overflow, None)
        return self._reference_forward(x, x_t, g, gamma_t, b, beta_t, overflow) if y is None else y

    def forward_assigned(self, x_raw, x_t, gamma_raw, gamma_t, beta_raw, beta_t, dst, role,
                         overflow=None):
        x, g, b = checked_inputs(x_raw, x_t, gamma_raw, gamma_t, beta_raw, beta_t)
        y = self._fused(x, x_t, g, gamma_t, b, beta_t, overflow, (dst, role))
        if y is None:
            return super().forward_assigned(x, x_t, g, gamma_t, b, beta_t, dst, role, overflow)
        return y

    def _fused(self, x: np.ndarray, x_t: FixedType, g: np.ndarray, gamma_t: FixedType,
               b: np.ndarray, beta_t: FixedType, overflow: dict[str, int] | None,
               then: tuple[FixedType, str] | None) -> np.ndarray | None:
        """The fused pass (:mod:`vitaccel.units._layernorm_kernels`) on validated codes, or
        None where it does not apply."""
        plan = self._rsqrt_plan()
        return None if plan is None else _layernorm_kernels.forward(
            self, plan, x, x_t, g, gamma_t, b, beta_t, overflow, then)

    def _reference_forward(self, x: np.ndarray, x_t: FixedType, g: np.ndarray,
                           gamma_t: FixedType, b: np.ndarray, beta_t: FixedType,
                           overflow: dict[str, int] | None) -> np.ndarray:
        """The vectorised datapath of the module docstring on validated codes."""
        d = x.shape[-1]
        s1, s1_t = _exact_sum(x, x_t, d, "sum")
        mean = div_assign(self.mean_t, s1, s1_t, d, overflow, "layernorm.mean")[..., None]
        xc = assign(self.centered_t, *fixed_sub(x, x_t, mean, self.mean_t), overflow,
                    "layernorm.centered")
        sq = mul_assign(self.var_t, xc, self.centered_t, xc, self.centered_t, overflow,
                        "layernorm.var")
        s2, s2_t = _exact_sum(sq, self.var_t, d, "sum of squares")
        var = div_assign(self.var_t, s2, s2_t, d, overflow, "layernorm.var")
        v = assign(self.var_t, *fixed_add(var, self.var_t, np.int64(self.eps_raw), self.var_t),
                   overflow, "layernorm.var")
        r = self.rsqrt(v, overflow)[..., None]
        xn = mul_assign(self.norm_t, xc, self.centered_t, r, self.rsqrt_t, overflow,
                        "layernorm.norm")
        prod, prod_t = fixed_mul(xn, self.norm_t, g, gamma_t)
        return assign(self.out_t, *fixed_add(prod, prod_t, b, beta_t), overflow,
                      "layernorm.out")

    def rsqrt(self, v_raw: np.ndarray, overflow: dict[str, int] | None = None) -> np.ndarray:
        """``rsqrt_t(1 / sqrt(v))`` for codes of ``var_t`` (non-positive v taken as one LSB)."""
        raise NotImplementedError

    def _rsqrt_plan(self) -> RsqrtPlan | None:
        """:meth:`rsqrt` as the fused kernel runs it; None (the default) keeps the vectorised
        datapath."""
        return None


@dataclass(frozen=True, eq=False)
class RsqrtTableLayerNorm(FixedLayerNorm):
    """1/sqrt by leading-one range reduction, a 1/sqrt(m) ROM over [1, 4] and Newton steps.

    For v (codes V of ``var_t``, F_v fractional bits)::

        e  = floor(log2 V) - F_v;  e2 = e rounded down to even        (value = m * 2**e2)
        m  = floor(V * 2**(K - F_v - e2))       ap_ufixed<K+2, 2>, m in [1, 4), K = ROM index bits
        y  = rsqrt_table_t(interp(1/sqrt, m))
        newton_steps times, with n_t = rsqrt_table_t plus one integer bit:
            h = n_t(m * n_t(y * y));  y = rsqrt_table_t(y * (3 - h) * 0.5)
        r  = y * 2**(-e2/2) into rsqrt_t        (truncating barrel shift)

    Variances above 1 and tiny ones are handled alike.
    """

    NAME: ClassVar[str] = "rsqrt_table"
    ROLE_FIELDS: ClassVar[dict[str, str]] = {
        "layernorm.mean": "mean_t",
        "layernorm.centered": "centered_t",
        "layernorm.var": "var_t",
        "layernorm.rsqrt_table": "rsqrt_table_t",
        "layernorm.rsqrt": "rsqrt_t",
        "layernorm.norm": "norm_t",
        "layernorm.out": "out_t",
    }

    rsqrt_table_t: FixedType = field(kw_only=True)
    step_log2: int = -4
    fraction_bits: int = 16
    newton_steps: int = 1
    table: Table = field(init=False)

    def __post_init__(self) -> None:
        if self.newton_steps < 0:
            raise UsageError(f"layernorm variant 'rsqrt_table': newton_steps must be >= 0, "
                             f"got {self.newton_steps}")
        object.__setattr__(self, "table", rsqrt_table(
            self.rsqrt_table_t, step_log2=self.step_log2, fraction_bits=self.fraction_bits))

    @property
    def newton_t(self) -> FixedType:
        """Format of the Newton intermediates y*y and m*y*y."""
        t = self.rsqrt_table_t
        return FixedType(t.width + 1, t.int_bits + 1, False)

    def _rsqrt_plan(self) -> RsqrtPlan | None:
        return _layernorm_kernels.rsqrt_table_plan(self)

    def rsqrt(self, v_raw: np.ndarray, overflow: dict[str, int] | None = None) -> np.ndarray:
        v = np.maximum(int_codes(v_raw, self.var_t, "layernorm variance"), 1)
        fv = self.var_t.frac_bits
        e = leading_one(v) - fv
        e2 = e - (e & 1)
        k = self.table.x_frac_bits
        m_t = FixedType(k + 2, 2, False)
        m = shift_floor(v, k - fv - e2)
        tab_t, n_t = self.rsqrt_table_t, self.newton_t
        y = self.table.interp(m, m_t, tab_t, overflow=overflow, role="layernorm.rsqrt_table")
        for _ in range(self.newton_steps):
            y2 = mul_assign(n_t, y, tab_t, y, tab_t, overflow, "layernorm.rsqrt_table")
            h = mul_assign(n_t, m, m_t, y2, n_t, overflow, "layernorm.rsqrt_table")
            c, c_t = fixed_sub(np.int64(3), THREE_T, h, n_t)
            yc, yc_t = fixed_mul(y, tab_t, c, c_t)
            y = assign(tab_t, *fixed_mul(yc, yc_t, np.int64(1), HALF_T), overflow,
                       "layernorm.rsqrt_table")
        return scale_pow2(y, tab_t, -(e2 >> 1), self.rsqrt_t, overflow, "layernorm.rsqrt")


@dataclass(frozen=True, eq=False)
class IsqrtLayerNorm(FixedLayerNorm):
    """Exact integer square root, then an exact (truncating) reciprocal division::

        s = sqrt_t(floor(sqrt(v)))    floor(sqrt(V * 2**(2 F_s - F_v))) codes (truncated)
        r = rsqrt_t(floor(2**(F_r + F_s) / s))      (s = 0 taken as one LSB)
    """

    NAME: ClassVar[str] = "isqrt"
    ROLE_FIELDS: ClassVar[dict[str, str]] = {
        "layernorm.mean": "mean_t",
        "layernorm.centered": "centered_t",
        "layernorm.var": "var_t",
        "layernorm.sqrt": "sqrt_t",
        "layernorm.rsqrt": "rsqrt_t",
        "layernorm.norm": "norm_t",
        "layernorm.out": "out_t",
    }

    sqrt_t: FixedType = field(kw_only=True)

    def __post_init__(self) -> None:
        if self.rsqrt_t.frac_bits + self.sqrt_t.frac_bits > _WORD_BITS - 2:
            raise UsageError(
                f"layernorm variant 'isqrt': F(rsqrt) + F(sqrt) = "
                f"{self.rsqrt_t.frac_bits + self.sqrt_t.frac_bits} exceeds {_WORD_BITS - 2}"
            )
        if self.var_t.width + max(0, 2 * self.sqrt_t.frac_bits - self.var_t.frac_bits) > 61:
            raise UsageError(
                f"layernorm variant 'isqrt': the radicand of {self.var_t} with "
                f"{self.sqrt_t.frac_bits} root fraction bits exceeds 61 bits"
            )

    def _rsqrt_plan(self) -> RsqrtPlan | None:
        return _layernorm_kernels.isqrt_plan(self)

    def rsqrt(self, v_raw: np.ndarray, overflow: dict[str, int] | None = None) -> np.ndarray:
        v = np.maximum(int_codes(v_raw, self.var_t, "layernorm variance"), 0)
        fs, fr = self.sqrt_t.frac_bits, self.rsqrt_t.frac_bits
        radicand = shift_floor(v, np.int64(2 * fs - self.var_t.frac_bits))
        root_t = FixedType(_WORD_BITS, _WORD_BITS - fs, True)
        s = assign(self.sqrt_t, _isqrt(radicand), root_t, overflow, "layernorm.sqrt")
        s = np.maximum(s, 1)
        q = (np.int64(1) << np.int64(fr + fs)) // s
        word_t = FixedType(_WORD_BITS, _WORD_BITS - fr, True)
        return assign(self.rsqrt_t, q, word_t, overflow, "layernorm.rsqrt")


LAYERNORM: dict[str, type[LayerNorm]] = {
    cls.NAME: cls for cls in (RsqrtTableLayerNorm, IsqrtLayerNorm)
}

# The integer-only variant (ivit) adds itself to LAYERNORM on import.
import vitaccel.units.layernorm_int  # noqa: E402,F401
