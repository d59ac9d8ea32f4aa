"""What the nonlinear unit variants cost: their ROMs, extra multipliers and pipeline depths.

Table sizes and formats are read from the variant objects (every :class:`~vitaccel.units.
tables.Table` attribute of the variant is one ROM); only the datapath structure around the
tables is described here, per variant name, as operation counts on the critical path.

Latency coefficients (cycles, typical Vitis HLS schedules at 250-300 MHz on UltraScale+):
a DSP multiply :data:`MUL_CYCLES` = 3 (AREG/MREG/PREG), one more per extra cascaded DSP;
an add, compare or shift 1; a ROM read :data:`ROM_CYCLES` = 2 (registered BRAM output); an
interpolated lookup = ROM + multiply + add.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from vitaccel.errors import UsageError
from vitaccel.units.tables import Table

__all__ = [
    "MUL_CYCLES",
    "ROM_CYCLES",
    "Rom",
    "VariantCost",
    "gelu_cost",
    "layernorm_cost",
    "softmax_cost",
    "tables_of",
]

MUL_CYCLES = 3
ROM_CYCLES = 2
LOOKUP_CYCLES = ROM_CYCLES + MUL_CYCLES + 1


@dataclass(frozen=True)
class Rom:
    """One lookup table as a ROM: ``entries`` words of ``width`` bits, interpolated with a
    ``diff_bits x fraction_bits`` multiplier."""

    name: str
    entries: int
    width: int
    diff_bits: int
    fraction_bits: int


@dataclass(frozen=True)
class VariantCost:
    """Hardware facts of one variant.

    Attributes
    ----------
    name : str
        Variant name.
    roms : tuple of Rom
        Its ROMs (from the variant's tables).
    latency_cycles : int
        Critical-path depth of one evaluation (LayerNorm: of the per-token reciprocal
        square root, the part that cannot overlap the streaming passes).
    passes : int
        Passes over the data (softmax: 1 = fused in the QK^T stream; 2 = an extra max pass).
    mults : tuple of (int, int)
        Extra multipliers per lane as signed operand widths (beside the table interpolation).
    """

    name: str
    roms: tuple[Rom, ...]
    latency_cycles: int
    passes: int = 1
    mults: tuple[tuple[int, int], ...] = ()


def tables_of(variant: Any) -> tuple[Rom, ...]:
    """Every :class:`Table` attribute of a variant object as a :class:`Rom`."""
    roms = []
    for f in dataclasses.fields(variant):
        t = getattr(variant, f.name, None)
        if isinstance(t, Table):
            roms.append(Rom(t.name, t.size, t.fmt.width, t.diff_t.width, t.fraction_bits))
    return tuple(roms)


def _sbits(t: Any) -> int:
    return t.width if t.signed else t.width + 1


def _unknown(kind: str, name: str, known: Any) -> UsageError:
    return UsageError(f"{kind} variant {name!r}: the cost model has no entry for it "
                      f"(expected one of: {', '.join(sorted(known))})")


# --------------------------------------------------------------------------- GELU
# name -> (multipliers on the path, adds/selects on the path) besides the table lookup.
_GELU_PATH = {"delta_table": (0, 2), "lut": (0, 1), "tanh": (5, 3)}


def gelu_cost(variant: Any) -> VariantCost:
    """ROMs, depth and extra multipliers of a GELU variant (one evaluation per lane)."""
    name = variant.NAME
    if name not in _GELU_PATH:
        raise _unknown("gelu", name, _GELU_PATH)
    muls, adds = _GELU_PATH[name]
    roms = tables_of(variant)
    mults: tuple[tuple[int, int], ...] = ()
    if name == "tanh":
        p = _sbits(variant.poly_t)
        c = variant.const_t.width + 1
        # x*x, x2*x, C2*x3, C1*v, x*(1+th)
        mults = ((p, p), (p, p), (c, p), (c, p), (p, _sbits(variant.table_t) + 1))
    depth = len(roms) * LOOKUP_CYCLES + muls * MUL_CYCLES + adds
    return VariantCost(name, roms, depth, 1, mults)


# ------------------------------------------------------------------------ softmax
# name -> passes over the scores. Single-pass variants keep a running max and sum while
# QK^T streams out (Edge-MoE, Softermax); the others need the exact row max first.
_SOFTMAX_PASSES = {"online": 1, "base2": 1, "two_pass": 2, "ibert": 2, "ivit": 2}


def softmax_cost(variant: Any) -> VariantCost:
    """ROMs, passes and the running-statistics depth of a softmax variant."""
    name = variant.NAME
    if name not in _SOFTMAX_PASSES:
        raise _unknown("softmax", name, _SOFTMAX_PASSES)
    roms = tables_of(variant)
    # Running update: exp lookup, sum * e (new max) then + 1, compare for the max.
    depth = LOOKUP_CYCLES + MUL_CYCLES + 2
    mults = ((_sbits(variant.sum_t), _sbits(variant.exp_t)),)
    return VariantCost(name, roms, depth, _SOFTMAX_PASSES[name], mults)


# ---------------------------------------------------------------------- LayerNorm
def _ln_rsqrt_table(v: Any) -> int:
    # leading-one detect + shift, interpolated ROM, Newton steps (3 multiplies + subtract).
    return 2 + LOOKUP_CYCLES + v.newton_steps * (3 * MUL_CYCLES + 1) + 1


def _ln_isqrt(v: Any) -> int:
    # Non-restoring square root: one result bit per cycle; restoring division likewise.
    radicand = v.var_t.width + max(0, 2 * v.sqrt_t.frac_bits - v.var_t.frac_bits)
    quotient = v.rsqrt_t.frac_bits + v.sqrt_t.frac_bits + 1
    return math.ceil(radicand / 2) + quotient


_LN_RSQRT = {"rsqrt_table": _ln_rsqrt_table, "isqrt": _ln_isqrt}


def layernorm_cost(variant: Any) -> VariantCost:
    """ROMs and the per-token statistics latency of a LayerNorm variant.

    The latency covers mean and variance scaling by 1/D (two multiplies), the epsilon add and
    the variant's reciprocal square root.
    """
    name = variant.NAME
    if name not in _LN_RSQRT:
        raise _unknown("layernorm", name, _LN_RSQRT)
    depth = 2 * MUL_CYCLES + 1 + _LN_RSQRT[name](variant)
    c, r = _sbits(variant.centered_t), _sbits(variant.rsqrt_t)
    # Per lane: xc*xc (variance) and xc*r (normalise); the caller adds xn*gamma.
    return VariantCost(name, tables_of(variant), depth, 1, ((c, c), (c, r)))
