"""Fixed-point formats: ``ap_fixed<W,I,Q,O,N>`` / ``ap_ufixed`` as a frozen dataclass."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from vitaccel.errors import UsageError

__all__ = ["FixedType", "Overflow", "Rounding", "MAX_WIDTH", "MAX_ABS_FRAC_BITS"]

MAX_WIDTH = 64
# Bound on |W - I| so that every code times its LSB is a finite, normal float64.
MAX_ABS_FRAC_BITS = 512


class Rounding(StrEnum):
    """Quantization (rounding) mode of an ``ap_fixed`` assignment."""

    TRN = "AP_TRN"
    TRN_ZERO = "AP_TRN_ZERO"
    RND = "AP_RND"
    RND_ZERO = "AP_RND_ZERO"
    RND_MIN_INF = "AP_RND_MIN_INF"
    RND_INF = "AP_RND_INF"
    RND_CONV = "AP_RND_CONV"


class Overflow(StrEnum):
    """Overflow mode of an ``ap_fixed`` assignment."""

    WRAP = "AP_WRAP"
    SAT = "AP_SAT"
    SAT_ZERO = "AP_SAT_ZERO"
    SAT_SYM = "AP_SAT_SYM"
    WRAP_SM = "AP_WRAP_SM"


_EXPECTED = (
    "expected ap_fixed<W,I[,Q[,O[,N]]]>, ap_ufixed<W,I[,Q[,O[,N]]]>, ap_int<W> or ap_uint<W> "
    f"with 1 <= W <= {MAX_WIDTH}, integer I, Q one of {', '.join(r.value for r in Rounding)}, "
    f"O one of {', '.join(o.value for o in Overflow)}, 0 <= N <= W"
)
_TYPE_RE = re.compile(r"^\s*(ap_fixed|ap_ufixed|ap_int|ap_uint)\s*<([^<>]*)>\s*$")
_INT_RE = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class FixedType:
    """A Xilinx ``ap_fixed<W,I,Q,O,N>`` (``signed=True``) or ``ap_ufixed`` format.

    A value is held as an integer code ``raw``; the real value is ``raw * 2**-frac_bits``.

    Parameters
    ----------
    width : int
        Total bits W, 1 <= W <= 64.
    int_bits : int
        Integer bits I, counting the sign bit of signed formats. May be negative or exceed W.
    signed : bool
        ``ap_fixed`` (two's complement) when True, ``ap_ufixed`` when False.
    rounding : Rounding
        Quantization mode applied when a value with more fractional bits is assigned.
    overflow : Overflow
        Overflow mode applied when the rounded value is outside the format's range.
    sat_bits : int
        N, the saturation bits used by ``AP_WRAP`` and ``AP_WRAP_SM`` (0 <= N <= W).
    """

    width: int
    int_bits: int
    signed: bool = True
    rounding: Rounding = Rounding.TRN
    overflow: Overflow = Overflow.WRAP
    sat_bits: int = 0

    def __post_init__(self) -> None:
        for name in ("width", "int_bits", "sat_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise UsageError(f"FixedType.{name}: expected an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        try:
            object.__setattr__(self, "rounding", Rounding(self.rounding))
        except ValueError:
            raise UsageError(
                f"FixedType.rounding: expected one of {[r.value for r in Rounding]}, "
                f"got {self.rounding!r}"
            ) from None
        try:
            object.__setattr__(self, "overflow", Overflow(self.overflow))
        except ValueError:
            raise UsageError(
                f"FixedType.overflow: expected one of {[o.value for o in Overflow]}, "
                f"got {self.overflow!r}"
            ) from None
        object.__setattr__(self, "signed", bool(self.signed))
        if not 1 <= self.width <= MAX_WIDTH:
            raise UsageError(f"FixedType.width: expected 1 <= W <= {MAX_WIDTH}, got {self.width}")
        if abs(self.width - self.int_bits) > MAX_ABS_FRAC_BITS:
            raise UsageError(
                f"FixedType.int_bits: expected |W - I| <= {MAX_ABS_FRAC_BITS}, "
                f"got W={self.width}, I={self.int_bits}"
            )
        if not 0 <= self.sat_bits <= self.width:
            raise UsageError(
                f"FixedType.sat_bits: expected 0 <= N <= W={self.width}, got {self.sat_bits}"
            )
        if not self.signed and self.overflow is Overflow.WRAP_SM:
            raise UsageError("FixedType.overflow: ap_ufixed does not support AP_WRAP_SM")

    # ----------------------------------------------------------------- construction
    @classmethod
    def parse(cls, text: str) -> FixedType:
        """Parse a C++ spelling such as ``"ap_fixed<16,6,AP_RND_CONV,AP_SAT>"``.

        Accepts ``ap_fixed<W,I[,Q[,O[,N]]]>``, ``ap_ufixed<...>``, ``ap_int<W>`` and
        ``ap_uint<W>``. An ``ap_int<W>`` is ``ap_fixed<W,W,AP_TRN_ZERO,AP_WRAP>``: assigning a
        fraction to it truncates toward zero (C semantics), as the Xilinx headers do.

        Raises
        ------
        UsageError
            If the text is not such a spelling; the message quotes it.
        """
        if not isinstance(text, str):
            raise UsageError(f"fixed-point type {text!r}: expected a string; {_EXPECTED}")
        m = _TYPE_RE.match(text)
        if m is None:
            raise UsageError(f"invalid fixed-point type {text!r}: {_EXPECTED}")
        kind, body = m.group(1), m.group(2)
        args = [a.strip() for a in body.split(",")]
        is_int = kind in ("ap_int", "ap_uint")
        n_max = 1 if is_int else 5
        n_min = 1 if is_int else 2
        if not n_min <= len(args) <= n_max:
            raise UsageError(
                f"invalid fixed-point type {text!r}: {kind} takes "
                f"{'1 argument' if is_int else '2 to 5 arguments'}; {_EXPECTED}"
            )
        for i in (0,) if is_int else (0, 1):
            if not _INT_RE.match(args[i]):
                raise UsageError(
                    f"invalid fixed-point type {text!r}: argument {args[i]!r} is not an integer; "
                    f"{_EXPECTED}"
                )
        width = int(args[0])
        int_bits = width if is_int else int(args[1])
        # an ap_int takes the integer part of what it is given, truncating toward zero
        rounding = Rounding.TRN_ZERO if is_int else Rounding.TRN
        overflow, sat_bits = Overflow.WRAP, 0
        if len(args) >= 3:
            if args[2] not in Rounding._value2member_map_:
                raise UsageError(
                    f"invalid fixed-point type {text!r}: unknown rounding mode {args[2]!r}; "
                    f"{_EXPECTED}"
                )
            rounding = Rounding(args[2])
        if len(args) >= 4:
            if args[3] not in Overflow._value2member_map_:
                raise UsageError(
                    f"invalid fixed-point type {text!r}: unknown overflow mode {args[3]!r}; "
                    f"{_EXPECTED}"
                )
            overflow = Overflow(args[3])
        if len(args) == 5:
            if not _INT_RE.match(args[4]):
                raise UsageError(
                    f"invalid fixed-point type {text!r}: saturation bits {args[4]!r} is not an "
                    f"integer; {_EXPECTED}"
                )
            sat_bits = int(args[4])
        try:
            return cls(
                width, int_bits, kind in ("ap_fixed", "ap_int"), rounding, overflow, sat_bits
            )
        except UsageError as exc:
            raise UsageError(f"invalid fixed-point type {text!r}: {exc}") from None

    @classmethod
    def integer(cls, width: int, signed: bool = True) -> FixedType:
        """The integer format of ``width`` bits: ``ap_fixed<W,W>`` or ``ap_ufixed<W,W>``."""
        return cls(width, width, signed)

    def __str__(self) -> str:
        return self.c_type

    @property
    def c_type(self) -> str:
        """Canonical C++ spelling, trailing default template arguments omitted.

        ``ap_fixed<W,W,AP_TRN_ZERO>`` (``AP_WRAP``, N = 0) is spelled ``ap_int<W>`` (and the
        unsigned one ``ap_uint<W>``): the two behave identically. ``ap_fixed<W,W>`` with the
        default ``AP_TRN`` floors and keeps its ``ap_fixed`` spelling.
        """
        if (self.int_bits == self.width and self.rounding is Rounding.TRN_ZERO
                and self.overflow is Overflow.WRAP and self.sat_bits == 0):
            return f"ap_int<{self.width}>" if self.signed else f"ap_uint<{self.width}>"
        args = [str(self.width), str(self.int_bits)]
        tail = [self.rounding.value, self.overflow.value, str(self.sat_bits)]
        defaults = [Rounding.TRN.value, Overflow.WRAP.value, "0"]
        while tail and tail[-1] == defaults[len(tail) - 1]:
            tail.pop()
        name = "ap_fixed" if self.signed else "ap_ufixed"
        return f"{name}<{','.join(args + tail)}>"

    # ----------------------------------------------------------------- properties
    @property
    def frac_bits(self) -> int:
        """Fractional bits F = W - I (negative when I > W)."""
        return self.width - self.int_bits

    @property
    def lsb(self) -> float:
        """Value of one code step, 2**-F."""
        return float(2.0**-self.frac_bits)

    @property
    def min_raw(self) -> int:
        """Smallest code: -2**(W-1) signed, 0 unsigned."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_raw(self) -> int:
        """Largest code: 2**(W-1) - 1 signed, 2**W - 1 unsigned."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def min_value(self) -> float:
        """Smallest representable value (min_raw * lsb)."""
        return float(np.ldexp(float(self.min_raw), -self.frac_bits))

    @property
    def max_value(self) -> float:
        """Largest representable value (max_raw * lsb, rounded to float64)."""
        return float(np.ldexp(float(self.max_raw), -self.frac_bits))

    @property
    def fits_int64(self) -> bool:
        """True when every code fits numpy int64 (all but 64-bit ``ap_ufixed``)."""
        return self.signed or self.width < 64

    def with_modes(
        self,
        rounding: Rounding | str | None = None,
        overflow: Overflow | str | None = None,
        sat_bits: int | None = None,
    ) -> FixedType:
        """Same W, I and signedness with other rounding/overflow/saturation-bit settings."""
        return FixedType(
            self.width,
            self.int_bits,
            self.signed,
            self.rounding if rounding is None else Rounding(rounding),
            self.overflow if overflow is None else Overflow(overflow),
            self.sat_bits if sat_bits is None else sat_bits,
        )

    # ----------------------------------------------------------------- conversions
    def quantize(self, x: object, *, return_overflow: bool = False):
        """Assign float64 values to this format exactly as C++ ``ap_fixed t = double(x)``.

        Parameters
        ----------
        x : array_like of float
            Values (converted to float64); NaN and infinities are rejected.
        return_overflow : bool
            Also return the number of elements whose rounded value was out of range.

        Returns
        -------
        raw : np.ndarray
            Codes (value = raw * 2**-frac_bits); int64, or object (Python ints) for 64-bit
            ``ap_ufixed``. With ``return_overflow``: ``(raw, n_overflow)``.
        """
        from vitaccel.fixed._cast import quantize_float

        raw, ovf = quantize_float(x, self)
        return (raw, int(np.count_nonzero(ovf))) if return_overflow else raw

    def to_float(self, raw: object) -> np.ndarray:
        """Codes of this format -> float64 values (round-to-nearest-even beyond 53 bits)."""
        from vitaccel.fixed._cast import as_raw

        r = as_raw(raw, self, "raw")
        if r.dtype == object:
            flat = np.array([float(v) for v in r.ravel()], dtype=np.float64).reshape(r.shape)
            return np.ldexp(flat, -self.frac_bits)
        return np.ldexp(r.astype(np.float64), -self.frac_bits)

    def cast(self, raw: object, src: FixedType, *, return_overflow: bool = False,
             copy: bool = True):
        """Assign codes of format ``src`` to this format (``ap_fixed`` ``operator=``).

        The exact source value is rounded with this format's rounding mode, then the overflow
        mode is applied to the rounded value (a rounding carry can itself overflow).

        Parameters
        ----------
        raw : array_like of int
            Codes in ``src`` (checked to lie in ``src``'s code range).
        src : FixedType
            Format of ``raw``.
        return_overflow : bool
            Also return how many elements' rounded value was outside this format's range (for
            ``AP_SAT_SYM`` with a signed source, the code ``min_raw`` counts too: it is
            saturated to ``-max_raw``).
        copy : bool
            False: when every code of ``src`` is a code of this format at the same scale, the
            int64 codes are returned without a copy (they may be ``raw`` itself).

        Returns
        -------
        raw : np.ndarray
            Codes in this format (int64, object for 64-bit ``ap_ufixed``); with
            ``return_overflow``: ``(raw, n_overflow)``.
        """
        from vitaccel.fixed._cast import cast_raw

        out, ovf = cast_raw(raw, src, self, copy=copy)
        return (out, int(np.count_nonzero(ovf))) if return_overflow else out
