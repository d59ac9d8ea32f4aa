"""Integer-only LayerNorm variant ``ivit`` (I-ViT I-LayerNorm with the iterative integer sqrt).

Roles:

==================== ====================================================================
``layernorm.int_in`` signed working input; its LSB ``s = 2**-F`` is the algorithm's scale.
                     The integer sqrt converges in its 10 iterations for
                     ``2^16 <= V = sum((q - mu)^2) <= 2^44``: pick F so that
                     ``N var(x) 4^F`` stays inside (F = 12 covers var 1e-3..100 at N = 192)
``layernorm.norm``   the normalised value ``(x - mu) / sigma`` (dyadic requantization)
``layernorm.out``    output
==================== ====================================================================

Datapath over the last axis (D = N features)::

    in_t q = x;                                   // layernorm.int_in (role's rounding/overflow)
    z = ivit_layernorm(q, s, 1, 0)                // intops: mu, y = q - mu, V, 10 sqrt steps k,
                                                  //   f = (2^31-1)/k, z = floor(y f / 2);
                                                  //   real value z * sqrt(N) / 2^30
    norm_t n = z * C;                             // C = sqrt(N) / 2^30 rounded to scale_bits
                                                  //   significant bits (dyadic, exact isqrt)
    out_t y = n * gamma + beta;                   // exact product and sum, one assignment

Difference from I-ViT's code: the affine part is applied in fixed point to ``layernorm.norm``
(gamma, beta are the graph's ap_fixed parameters) instead of folding ``floor(beta/gamma/s_out)``
into the integer and scaling per channel by ``gamma``; this keeps ``gamma = 0`` channels exact
(output beta). The algorithm has no epsilon: a constant row gives ``z = 0``, hence ``beta``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import ClassVar

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, fixed_add, fixed_mul
from vitaccel.units._dyadic import dyadic_sqrt, requant
from vitaccel.units._ops import assign
from vitaccel.units.intops import ivit_layernorm
from vitaccel.units.layernorm import LAYERNORM, LayerNorm, checked_inputs

__all__ = ["IvitLayerNorm"]

Z_T = FixedType.integer(33)
"""Format of z: ``|z| <= |y| f / 2 <= sqrt(V) 2^30 / k < 2^31`` (k >= isqrt(V) after the
iterations, which start above the root or overshoot it)."""

_OUT_SHIFT = 30


@dataclass(frozen=True, eq=False)
class IvitLayerNorm(LayerNorm):
    """I-ViT I-LayerNorm (module docstring).

    Attributes
    ----------
    in_t, norm_t, out_t : FixedType
        Formats of ``layernorm.int_in``, ``layernorm.norm`` and ``layernorm.out``.
    eps : float
        Accepted for the common LayerNorm interface (the graph passes the model's eps); the
        published integer algorithm has no epsilon, so it does not enter the datapath.
    scale_bits : int
        Significant bits of the dyadic constant ``sqrt(N) / 2^30``.
    """

    NAME: ClassVar[str] = "ivit"
    ROLE_FIELDS: ClassVar[dict[str, str]] = {
        "layernorm.int_in": "in_t", "layernorm.norm": "norm_t", "layernorm.out": "out_t"}

    in_t: FixedType
    norm_t: FixedType
    out_t: FixedType
    eps: float = 1e-6
    scale_bits: int = 24
    _constants: dict[int, tuple[int, FixedType]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        t = self.in_t
        if not t.signed or t.width > 31 or t.frac_bits < 0:
            raise UsageError(f"layernorm variant 'ivit': role layernorm.int_in must be signed, "
                             f"at most 31 bits, with >= 0 fractional bits, got {t}")
        sb = self.scale_bits
        if isinstance(sb, bool) or not isinstance(sb, int) or not 2 <= sb <= 64 - Z_T.width:
            raise UsageError(f"layernorm variant 'ivit': scale_bits must be an integer in "
                             f"[2, {64 - Z_T.width}], got {sb!r}")
        object.__setattr__(self, "_constants", {})

    def norm_constant(self, n: int) -> tuple[int, FixedType]:
        """The dyadic constant ``C = sqrt(n) / 2^30`` for rows of n features: (code, format)."""
        if n not in self._constants:
            self._constants[n] = dyadic_sqrt(n, -_OUT_SHIFT, self.scale_bits)
        return self._constants[n]

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
        d = x.shape[-1]
        q = assign(self.in_t, x, x_t, overflow, "layernorm.int_in")
        z, _ = ivit_layernorm(q, Fraction(1, 2**self.in_t.frac_bits), 1.0, 0.0)
        c_raw, c_t = self.norm_constant(d)
        n = requant(z.astype(np.int64), Z_T, c_raw, c_t, self.norm_t, overflow, "layernorm.norm")
        prod, prod_t = fixed_mul(n, self.norm_t, g, gamma_t)
        return assign(self.out_t, *fixed_add(prod, prod_t, b, beta_t), overflow,
                      "layernorm.out")


LAYERNORM.update({IvitLayerNorm.NAME: IvitLayerNorm})
