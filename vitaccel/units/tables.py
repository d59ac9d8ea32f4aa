"""Lookup tables with linear interpolation, computed once here and rendered as C++ ROMs.

A :class:`Table` samples a function on a uniform grid ``x_k = x0 + k * 2**step_log2`` and stores
the samples as raw codes of ``fmt``. :meth:`Table.interp` is the exact fixed-point
interpolation the hardware performs: an index that is a shift of the input, a fraction that
is a bit field of it, one multiply and two adds. The builders below compute the samples in
float64 once and quantize them with ``fmt.quantize`` (``fmt``'s rounding mode); the C++
generator prints ``table.values`` verbatim, so Python and C++ read identical ROMs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, Overflow, Rounding, add_type, mul_type, sub_type
from vitaccel.units._ops import _SHIFT_WORD_BITS, assign, int_codes, shift_floor

__all__ = [
    "Table",
    "build_table",
    "exp_neg_table",
    "gelu_delta",
    "gelu_delta_table",
    "gelu_float",
    "gelu_table",
    "interp_one",
    "pow2_neg_table",
    "reciprocal_table",
    "rsqrt_table",
    "tanh_table",
]


@dataclass(frozen=True, eq=False)
class Table:
    """A uniformly sampled function stored as raw codes.

    Attributes
    ----------
    name : str
        ROM name (a C++ identifier suffix, e.g. ``"exp_neg"``).
    x0_raw : int
        First grid point as a code with ``x_frac_bits`` fractional bits (value x0_raw * 2**-F).
    x_frac_bits : int
        F, the fractional bits of the index format: inputs are truncated (floor) to this grid.
    step_log2 : int
        The grid step is ``2**step_log2`` (a power of two: the index is a shift).
    values : np.ndarray
        int64 codes of ``fmt``, one per grid point (read-only), at least two.
    fmt : FixedType
        Format of the stored samples.

    Notes
    -----
    ``fraction_bits = x_frac_bits + step_log2`` (>= 1) bits of the input lie below the step;
    they are the interpolation fraction.
    """

    name: str
    x0_raw: int
    x_frac_bits: int
    step_log2: int
    values: np.ndarray
    fmt: FixedType

    def __post_init__(self) -> None:
        vals = int_codes(self.values, self.fmt, f"table {self.name!r} values")
        if vals.ndim != 1 or vals.size < 2:
            raise UsageError(f"table {self.name!r}: values must be 1-D with at least 2 entries")
        if self.fraction_bits < 1 or self.fraction_bits > 30:
            raise UsageError(
                f"table {self.name!r}: x_frac_bits + step_log2 must lie in [1, 30], "
                f"got {self.fraction_bits}"
            )
        if self.sum_t.width > 63:
            raise UsageError(
                f"table {self.name!r}: interpolation needs {self.sum_t} (over 63 bits); "
                "use a narrower table format or fewer fraction bits"
            )
        vals = vals.copy()
        vals.flags.writeable = False
        object.__setattr__(self, "values", vals)
        object.__setattr__(self, "x0_raw", int(self.x0_raw))

    # ------------------------------------------------------------------ grid facts
    @property
    def size(self) -> int:
        """Number of entries."""
        return int(self.values.size)

    @property
    def fraction_bits(self) -> int:
        """Bits of the input below the step: the interpolation fraction's width."""
        return self.x_frac_bits + self.step_log2

    @property
    def step(self) -> float:
        """Grid step (value units)."""
        return math.ldexp(1.0, self.step_log2)

    @property
    def x0(self) -> float:
        """First grid point (value units)."""
        return math.ldexp(self.x0_raw, -self.x_frac_bits)

    @property
    def x_last(self) -> float:
        """Last grid point (value units); inputs beyond it read the last entry."""
        return self.x0 + (self.size - 1) * self.step

    @property
    def index_t(self) -> FixedType:
        """Format of the ROM address: ``ap_uint<bits(size - 1)>``."""
        return FixedType.integer(max(1, (self.size - 1).bit_length()), signed=False)

    @property
    def fraction_t(self) -> FixedType:
        """Format of the interpolation fraction: ``ap_ufixed<fraction_bits, 0>``."""
        return FixedType(self.fraction_bits, 0, False)

    @property
    def diff_t(self) -> FixedType:
        """Format of ``b - a`` (exact)."""
        return sub_type(self.fmt, self.fmt)

    @property
    def product_t(self) -> FixedType:
        """Format of ``(b - a) * t`` (exact)."""
        return mul_type(self.diff_t, self.fraction_t)

    @property
    def sum_t(self) -> FixedType:
        """Format of ``a + (b - a) * t`` (exact), the value assigned to the output format."""
        return add_type(self.fmt, self.product_t)

    # ---------------------------------------------------------------- evaluation
    def position(self, x_raw: np.ndarray, x_t: FixedType) -> np.ndarray:
        """Unclamped grid offset ``floor((x - x0) * 2**x_frac_bits)`` (int64).

        Negative means ``x < x0``; ``>= (size-1) << fraction_bits`` means ``x >= x_last``.
        """
        x = int_codes(x_raw, x_t, f"table {self.name!r} input")
        return shift_floor(x, np.int64(self.x_frac_bits - x_t.frac_bits)) - self.x0_raw

    def offset(self, x_raw: np.ndarray, x_t: FixedType) -> np.ndarray:
        """Clamped grid offset ``u = clip(position, 0, (size-1) << fraction_bits)``.

        ``index = u >> fraction_bits`` and ``fraction = u & (2**fraction_bits - 1)``.
        """
        return np.clip(self.position(x_raw, x_t), 0, (self.size - 1) << self.fraction_bits)

    def interp(
        self,
        x_raw: np.ndarray,
        x_t: FixedType,
        out_t: FixedType,
        *,
        overflow: dict[str, int] | None = None,
        role: str | None = None,
    ) -> np.ndarray:
        """Linearly interpolated table value at ``x``, assigned to ``out_t``.

        Exact definition (all intermediates exact until the final assignment)::

            u     = clip(floor((x - x0) * 2**F), 0, (size-1) << fb)   # fb = fraction_bits
            i     = u >> fb                       # index_t
            t     = u & (2**fb - 1)               # fraction_t = ap_ufixed<fb, 0>
            a, b  = values[i], values[min(i + 1, size - 1)]           # fmt
            y     = out_t(a + (b - a) * t)        # diff_t, product_t, sum_t, then assign

        Below x0 the first entry is read; at or beyond ``x_last`` the last one. C++::

            ap_int<..> u = clamp(x_shifted - X0);  index_t i = u >> FB;
            fraction_t t; t.range() = u(FB - 1, 0);
            fmt a = ROM[i], b = ROM[i == SIZE - 1 ? i : i + 1];
            out_t y = a + (b - a) * t;

        Parameters
        ----------
        x_raw : array_like of int
            Input codes of ``x_t``.
        x_t, out_t : FixedType
            Input and output formats.
        overflow : dict, optional
            Overflow counter; the output assignment's overflows are added under ``role``
            (default ``"table.<name>"``).
        """
        x = int_codes(x_raw, x_t, f"table {self.name!r} input")
        total = _interp_sum(np.ascontiguousarray(x).ravel(), *self.kernel_args(x_t))
        return assign(out_t, total.reshape(x.shape), self.sum_t, overflow,
                      role or f"table.{self.name}")

    def kernel_args(self, x_t: FixedType) -> tuple:
        """Arguments after ``v`` of :func:`interp_one` for inputs of ``x_t``:
        ``(k, x0_raw, u_max, fb, values, shift_a)``."""
        return (
            np.int64(self.x_frac_bits - x_t.frac_bits), np.int64(self.x0_raw),
            np.int64((self.size - 1) << self.fraction_bits), np.int64(self.fraction_bits),
            np.asarray(self.values, dtype=np.int64),
            np.int64(self.sum_t.frac_bits - self.fmt.frac_bits),
        )


@njit(cache=True)
def interp_one(v, k, x0_raw, u_max, fb, values, shift_a):
    """The exact pre-assignment sum ``a + (b - a) * t`` (codes of ``Table.sum_t``) of
    :meth:`Table.interp` for one input code ``v``, as compiled code for fused unit kernels.

    ``k = x_frac_bits - F_x``, ``u_max = (size - 1) << fb``, ``fb = fraction_bits``,
    ``shift_a = F(sum_t) - F(fmt)`` (:meth:`Table.kernel_args` packs them);
    :meth:`Table.position` and :func:`~vitaccel.units._ops.shift_floor` define the same offset.
    """
    limit = np.int64(1) << (_SHIFT_WORD_BITS - 1)
    if k >= 0:
        kl = min(k, 62)
        if v == 0:
            w = np.int64(0)
        elif abs(v) < (limit >> kl):
            w = v << kl
        else:
            w = -limit if v < 0 else limit
    else:
        w = v >> min(-k, 63)
    u = min(max(w - x0_raw, 0), u_max)
    i = u >> fb
    a = values[i]
    b = values[min(i + 1, values.size - 1)]
    return (a << shift_a) + (b - a) * (u & ((np.int64(1) << fb) - 1))


@njit(cache=True)
def _interp_sum(x, k, x0_raw, u_max, fb, values, shift_a):
    """:func:`interp_one` on every element of a 1-D int64 array."""
    out = np.empty_like(x)
    for j in range(x.size):
        out[j] = interp_one(x[j], k, x0_raw, u_max, fb, values, shift_a)
    return out


# ---------------------------------------------------------------------- builders
def build_table(
    name: str,
    func: Callable[[np.ndarray], np.ndarray],
    *,
    x0: float,
    step_log2: int,
    size: int,
    fmt: FixedType,
    fraction_bits: int = 16,
    sample_rounding: Rounding | str = Rounding.RND,
) -> Table:
    """Sample ``func`` (float64 -> float64, vectorised) on ``x0 + k * 2**step_log2``.

    ``x0`` must be exactly representable with ``fraction_bits - step_log2`` fractional bits.
    The samples are assigned to ``fmt`` with ``sample_rounding`` (default AP_RND, round to
    nearest: Edge-MoE's GELU ROM is exactly that) and saturation; a sample that ``fmt`` cannot
    hold to within one LSB is an error. ``fmt`` itself (its own rounding) is the ROM's type.
    """
    if size < 2:
        raise UsageError(f"table {name!r}: size must be at least 2, got {size}")
    x_frac_bits = fraction_bits - step_log2
    x0_scaled = math.ldexp(x0, x_frac_bits)
    if x0_scaled != math.floor(x0_scaled) or abs(x0_scaled) >= 2**52:
        raise UsageError(
            f"table {name!r}: x0={x0} is not a multiple of 2**-{x_frac_bits} (fraction_bits - "
            "step_log2)"
        )
    grid = x0 + np.arange(size, dtype=np.float64) * math.ldexp(1.0, step_log2)
    samples = np.asarray(func(grid), dtype=np.float64)
    values = fmt.with_modes(rounding=sample_rounding, overflow=Overflow.SAT).quantize(samples)
    if np.any(np.abs(fmt.to_float(values) - samples) > fmt.lsb):
        raise UsageError(
            f"table {name!r}: format {fmt} cannot hold the sampled values, which lie in "
            f"[{samples.min():.6g}, {samples.max():.6g}]; use a wider (or signed) format"
        )
    return Table(name, int(x0_scaled), x_frac_bits, step_log2, np.asarray(values), fmt)


def _size_for(name: str, span: float, step_log2: int) -> int:
    steps = math.ldexp(span, -step_log2)
    if steps != math.floor(steps) or steps < 1:
        raise UsageError(
            f"table {name!r}: the range {span} must be a positive multiple of the step "
            f"2**{step_log2}"
        )
    return int(steps) + 1


def exp_neg_table(
    fmt: FixedType, *, step_log2: int = -5, t_max: float = 16.0, fraction_bits: int = 16
) -> Table:
    """``exp(-t)`` for t in [0, t_max]; beyond t_max the last entry (exp(-t_max)) is read."""
    size = _size_for("exp_neg", t_max, step_log2)
    return build_table("exp_neg", lambda t: np.exp(-t), x0=0.0, step_log2=step_log2,
                       size=size, fmt=fmt, fraction_bits=fraction_bits)


def pow2_neg_table(fmt: FixedType, *, step_log2: int = -6, fraction_bits: int = 16) -> Table:
    """``2**-t`` for t in [0, 1] (one octave; integer parts of t are a right shift)."""
    size = _size_for("pow2_neg", 1.0, step_log2)
    return build_table("pow2_neg", lambda t: np.exp2(-t), x0=0.0, step_log2=step_log2,
                       size=size, fmt=fmt, fraction_bits=fraction_bits)


def reciprocal_table(fmt: FixedType, *, step_log2: int = -6, fraction_bits: int = 16) -> Table:
    """``1/m`` for a normalised mantissa m in [1, 2] (values in [0.5, 1])."""
    size = _size_for("reciprocal", 1.0, step_log2)
    return build_table("reciprocal", lambda m: 1.0 / m, x0=1.0, step_log2=step_log2,
                       size=size, fmt=fmt, fraction_bits=fraction_bits)


def rsqrt_table(fmt: FixedType, *, step_log2: int = -5, fraction_bits: int = 16) -> Table:
    """``1/sqrt(m)`` for a mantissa m in [1, 4] (even-exponent normalisation; values [0.5, 1])."""
    size = _size_for("rsqrt", 3.0, step_log2)
    return build_table("rsqrt", lambda m: 1.0 / np.sqrt(m), x0=1.0, step_log2=step_log2,
                       size=size, fmt=fmt, fraction_bits=fraction_bits)


def _erfc(z: np.ndarray) -> np.ndarray:
    return np.array([math.erfc(float(v)) for v in np.ravel(z)]).reshape(np.shape(z))


def gelu_delta(t: np.ndarray) -> np.ndarray:
    """Float64 ``delta(t) = t * Phi(-t)`` so that ``gelu(x) = relu(x) - delta(|x|)``."""
    t = np.asarray(t, dtype=np.float64)
    return t * 0.5 * _erfc(t / math.sqrt(2.0))


def gelu_float(x: np.ndarray) -> np.ndarray:
    """Float64 GELU, erf form: ``x * Phi(x)``."""
    x = np.asarray(x, dtype=np.float64)
    return x * 0.5 * _erfc(-x / math.sqrt(2.0))


def gelu_delta_table(
    fmt: FixedType | None = None,
    *,
    step_log2: int = -5,
    t_max: float = 5.5,
    fraction_bits: int | None = None,
) -> Table:
    """Edge-MoE's GELU correction ``delta(t) = t * Phi(-t)`` for t in [0, t_max].

    Defaults give Edge-MoE's ROM: 177 entries at step 1/32 over [0, 5.5] in
    ``ap_ufixed<22,0>`` (samples rounded to nearest), with ``fraction_bits = 22 + step_log2``
    (17) so that an input with 22 fractional bits (``ap_fixed<32,10>``) is used in full.
    """
    fmt = fmt if fmt is not None else FixedType(22, 0, False)
    fb = fraction_bits if fraction_bits is not None else fmt.frac_bits + step_log2
    size = _size_for("gelu_delta", t_max, step_log2)
    return build_table("gelu_delta", gelu_delta, x0=0.0, step_log2=step_log2, size=size,
                       fmt=fmt, fraction_bits=fb)


def gelu_table(
    fmt: FixedType,
    *,
    x_min: float = -6.0,
    x_max: float = 6.0,
    step_log2: int = -5,
    fraction_bits: int = 16,
) -> Table:
    """GELU itself (erf form) on [x_min, x_max]."""
    size = _size_for("gelu", x_max - x_min, step_log2)
    return build_table("gelu", gelu_float, x0=x_min, step_log2=step_log2, size=size, fmt=fmt,
                       fraction_bits=fraction_bits)


def tanh_table(
    fmt: FixedType, *, t_max: float = 8.0, step_log2: int = -5, fraction_bits: int = 16
) -> Table:
    """``tanh(t)`` for t in [0, t_max] (odd symmetry gives negative arguments)."""
    size = _size_for("tanh", t_max, step_log2)
    return build_table("tanh", np.tanh, x0=0.0, step_log2=step_log2, size=size, fmt=fmt,
                       fraction_bits=fraction_bits)
