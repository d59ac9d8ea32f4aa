"""Integer-only GELU variants ``ibert`` (I-BERT i-GELU) and ``ivit`` (I-ViT ShiftGELU).

Each rescales its input (codes of the accumulator format ``x_t``) into its own signed working
format, whose LSB ``s = 2**-F`` is the scale the published integer algorithm of
:mod:`vitaccel.units.intops` runs at, then brings the integer result into ``gelu.out``:

==================== ====================================================================
``gelu.ibert_in``    (ibert) working input, F >= 10 (i-GELU is accurate only for s <= 2^-10)
``gelu.ivit_in``     (ivit) working input, coarse enough that ``S`` never saturates on rows
                     whose maximum is >= 0 (``|floor(-1/(1.702 s))| * 2^24 <= 2^31 - 1``,
                     i.e. F <= 7)
``gelu.out``         output
==================== ====================================================================

The rescale ``in_t q = x`` is an ap_fixed assignment (the role's rounding and overflow modes;
a saturating role such as ``ap_fixed<24,10,AP_TRN,AP_SAT>`` clips far-out inputs, counted as
overflows of the role). A finer working LSB than ``x_t`` is exact (a left shift).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import ClassVar

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.units._dyadic import dyadic_constant, integer_type, requant
from vitaccel.units._ops import assign
from vitaccel.units.gelu import GELU, Gelu
from vitaccel.units.intops import (
    IBERT_GELU_N,
    INT32_MAX,
    SHIFTGELU_N,
    ibert_gelu,
    ibert_gelu_constants,
    ivit_shiftgelu,
    shiftgelu_x0,
)

__all__ = ["IbertGelu", "IvitGelu"]


def _check_in(name: str, role: str, t: FixedType, lo: int, hi: int) -> None:
    if not t.signed or not lo <= t.frac_bits <= hi or t.width > 32:
        raise UsageError(f"gelu variant {name!r}: role {role} must be signed, at most 32 bits, "
                         f"with {lo}..{hi} fractional bits, got {t}")


@dataclass(frozen=True, eq=False)
class IbertGelu(Gelu):
    """I-BERT i-GELU, element-wise::

        in_t q = x;                                   // gelu.ibert_in, s = 2^-F_in
        v = ibert_gelu(q, s)                          // intops; real value v * s sf / 2 (< 0)
        out_t y = v * C;                              // gelu.out; C = s sf / 2 rounded to
                                                      //   scale_bits significant bits (dyadic)

    with ``sf = (s/1.4142)^2 * (-0.2888) * 2^14``. ``v`` is an ``ap_int`` (``v_t``) sized at
    build time from the range of ``gelu.ibert_in``; ``C`` is ``c_raw`` in ``c_t`` (signed).

    Attributes
    ----------
    in_t, out_t : FixedType
        Formats of ``gelu.ibert_in`` and ``gelu.out``.
    scale_bits : int
        Significant bits of the dyadic constant C.
    """

    NAME: ClassVar[str] = "ibert"
    ROLE_FIELDS: ClassVar[dict[str, str]] = {"gelu.ibert_in": "in_t", "gelu.out": "out_t"}

    in_t: FixedType
    out_t: FixedType
    scale_bits: int = 24
    v_t: FixedType = field(init=False)
    c_raw: int = field(init=False)
    c_t: FixedType = field(init=False)

    def __post_init__(self) -> None:
        _check_in(self.NAME, "gelu.ibert_in", self.in_t, 10, 24)
        k = self.in_t.frac_bits
        bi, ci, sf, shift = ibert_gelu_constants(k)
        q_max = max(-self.in_t.min_raw, self.in_t.max_raw)
        v_bound = q_max * ((bi * bi + abs(ci)) // 2**IBERT_GELU_N + 1 + abs(shift))
        v_t = integer_type(v_bound)
        if v_t.width > 63:
            raise UsageError(f"gelu variant 'ibert': role gelu.ibert_in {self.in_t} makes the "
                             f"integer GELU {v_t.width} bits wide (at most 63)")
        c_raw, c_t = dyadic_constant(Fraction(1, 2**k) * sf / 2, self.scale_bits)
        object.__setattr__(self, "v_t", v_t)
        object.__setattr__(self, "c_raw", c_raw)
        object.__setattr__(self, "c_t", c_t)

    def _forward(self, x, x_t, overflow):
        q = assign(self.in_t, x, x_t, overflow, "gelu.ibert_in")
        v, _ = ibert_gelu(q, Fraction(1, 2**self.in_t.frac_bits))
        return requant(v.astype(np.int64), self.v_t, self.c_raw, self.c_t, self.out_t, overflow,
                       "gelu.out")


@dataclass(frozen=True, eq=False)
class IvitGelu(Gelu):
    """I-ViT ShiftGELU ``x * sigmoid(1.702 x)``, along the last axis (rows, as published: the
    row maximum m keeps the shift exponents in range; a 0-d input is a one-element row)::

        in_t q = x;                                   // gelu.ivit_in, s = 2^-F_in
        out = ivit_shiftgelu(q, s, sigmoid_bits)      // intops: q * sig, sig = floor(e f / ...)
        out_t y = out * 2^-(F_in + sigmoid_bits - 1)  // gelu.out; power-of-two scale, so a
                                                      //   plain assignment (out_t rounding)

    Range: on rows whose maximum is >= 0, ``S = e + em <= |x0| 2^24 <= 2^31 - 1`` (checked at
    build) and ``sig <= 2^(sigmoid_bits - 1)``. Rows whose maximum is below about -1.1 saturate
    ``S`` (published behaviour: ``f = 1`` and sig is no longer a sigmoid).

    Attributes
    ----------
    in_t, out_t : FixedType
        Formats of ``gelu.ivit_in`` and ``gelu.out``.
    sigmoid_bits : int
        The published ``output_bit`` of the sigmoid (1..32).
    """

    NAME: ClassVar[str] = "ivit"
    ROLE_FIELDS: ClassVar[dict[str, str]] = {"gelu.ivit_in": "in_t", "gelu.out": "out_t"}

    in_t: FixedType
    out_t: FixedType
    sigmoid_bits: int = 8
    prod_t: FixedType = field(init=False)

    def __post_init__(self) -> None:
        ob = self.sigmoid_bits
        if isinstance(ob, bool) or not isinstance(ob, int) or not 1 <= ob <= 32:
            raise UsageError(f"gelu variant 'ivit': sigmoid_bits must be an integer in [1, 32], "
                             f"got {ob!r}")
        _check_in(self.NAME, "gelu.ivit_in", self.in_t, 0, 16)
        k = self.in_t.frac_bits
        x0 = shiftgelu_x0(k)
        if -x0 << (SHIFTGELU_N + 1) > INT32_MAX:
            raise UsageError(f"gelu variant 'ivit': role gelu.ivit_in {self.in_t} is too fine: "
                             f"ShiftGELU's sum saturates (|x0| = {-x0} needs |x0| * 2^24 < 2^31; "
                             "use at most 7 fractional bits)")
        # sig <= max(2^31, |x0| 2^23) >> (32 - ob) on any row (intops.ivit_shiftgelu notes)
        sig_bound = max(2**31, -x0 << SHIFTGELU_N) >> (32 - ob)
        q_max = max(-self.in_t.min_raw, self.in_t.max_raw)
        bits = integer_type(q_max * sig_bound).width
        object.__setattr__(self, "prod_t", FixedType(bits, bits - (k + ob - 1), True))

    def _forward(self, x, x_t, overflow):
        q = assign(self.in_t, x, x_t, overflow, "gelu.ivit_in")
        rows = q.reshape(1) if q.ndim == 0 else q
        out, _ = ivit_shiftgelu(rows, Fraction(1, 2**self.in_t.frac_bits), self.sigmoid_bits)
        y = assign(self.out_t, out.astype(np.int64), self.prod_t, overflow, "gelu.out")
        return y.reshape(q.shape)


GELU.update({cls.NAME: cls for cls in (IbertGelu, IvitGelu)})
