"""Template contexts of the nonlinear unit variants (softmax, GELU, LayerNorm).

Each registry maps a variant's ``NAME`` (the key of its registry in ``vitaccel.units``) to a
function ``(variant, prefix, x_fmt, ctx) -> dict`` whose result names the variant's template
(``"template"``) and every format, constant and ROM that template reads. Formats come from the
variant object itself, ROMs from its ``Table`` objects, constants from its own properties.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from vitaccel.codegen._context import EmitContext
from vitaccel.fixed import FixedType, sub_type
from vitaccel.units.gelu import DeltaTableGelu, LutGelu, TanhGelu
from vitaccel.units.gelu_int import IbertGelu, IvitGelu
from vitaccel.units.intops import (
    IBERT_EXP_N,
    IBERT_GELU_N,
    LAYERNORM_ITERATIONS,
    LAYERNORM_K0,
    SHIFTGELU_N,
    SHIFTMAX_N,
    ibert_exp_constants,
    ibert_gelu_constants,
    shiftgelu_x0,
)
from vitaccel.units.layernorm import FixedLayerNorm, IsqrtLayerNorm, RsqrtTableLayerNorm
from vitaccel.units.layernorm_int import Z_T, IvitLayerNorm
from vitaccel.units.softmax import Base2Softmax, OnlineSoftmax, RomSoftmax, TwoPassSoftmax
from vitaccel.units.softmax_int import CLAMP, IbertSoftmax, IntSoftmax, IvitSoftmax

__all__ = ["SOFTMAX_RENDER", "GELU_RENDER", "LAYERNORM_RENDER", "abs_type"]

VariantRenderer = Callable[[Any, str, FixedType, EmitContext], dict[str, Any]]


def abs_type(t: FixedType) -> FixedType:
    """Format holding |x| exactly (as ``vitaccel.units.gelu``: one more bit when signed)."""
    return FixedType(t.width + 1, t.int_bits + 1, True) if t.signed else t


def _t(ctx: EmitContext, prefix: str, role: str, fmt: FixedType, what: str) -> str:
    return ctx.types.add(f"{prefix}_{role}_t", fmt, what)


# ------------------------------------------------------------------------------- softmax
def _softmax_common(v: RomSoftmax, prefix: str, x_fmt: FixedType, ctx: EmitContext) -> dict:
    return {
        "fn": f"{prefix}_softmax",
        "x_t": _t(ctx, prefix, "score", x_fmt, "softmax input (scores)"),
        "x_frac": x_fmt.frac_bits,
        "exp_t": _t(ctx, prefix, "sm_exp", v.exp_t, "softmax exp values"),
        "sum_t": _t(ctx, prefix, "sm_sum", v.sum_t, "softmax running sum"),
        "sum_frac": v.sum_t.frac_bits,
        "recip_table_t": _t(ctx, prefix, "sm_recip_table", v.recip_table_t,
                            "softmax 1/m ROM format"),
        "recip_t": _t(ctx, prefix, "sm_recip", v.recip_t, "softmax reciprocal of the sum"),
        "prob_t": _t(ctx, prefix, "sm_prob", v.prob_t, "softmax probabilities"),
        "recip_rom": ctx.roms.add(v.recip_table),
        "recip_k": v.recip_table.x_frac_bits,
        "recip_rom_frac": v.recip_table_t.frac_bits,
    }


def _softmax_exp(v: OnlineSoftmax | TwoPassSoftmax, prefix: str, x_fmt: FixedType,
                 ctx: EmitContext) -> dict:
    c = _softmax_common(v, prefix, x_fmt, ctx)
    c["diff_t"] = _t(ctx, prefix, "sm_diff", sub_type(x_fmt, x_fmt), "softmax max - score")
    c["exp_rom"] = ctx.roms.add(v.exp_table)
    c["max_t"] = c["x_t"]
    return c


def _online(v: OnlineSoftmax, prefix: str, x_fmt: FixedType, ctx: EmitContext) -> dict:
    return {**_softmax_exp(v, prefix, x_fmt, ctx), "template": "softmax_online.j2"}


def _two_pass(v: TwoPassSoftmax, prefix: str, x_fmt: FixedType, ctx: EmitContext) -> dict:
    return {**_softmax_exp(v, prefix, x_fmt, ctx), "template": "softmax_two_pass.j2"}


def _base2(v: Base2Softmax, prefix: str, x_fmt: FixedType, ctx: EmitContext) -> dict:
    c = _softmax_common(v, prefix, x_fmt, ctx)
    c.update({
        "template": "softmax_base2.j2",
        "z_t": _t(ctx, prefix, "sm_z", v.z_t, "softmax score * log2(e)"),
        "z_frac": v.z_t.frac_bits,
        "log2e_t": _t(ctx, prefix, "sm_log2e", v.log2e_t, "log2(e) constant"),
        "log2e_raw": v.log2e_raw,
        "max_t": _t(ctx, prefix, "sm_max", v.max_type(x_fmt), "softmax integer running max"),
        "pow2_rom": ctx.roms.add(v.pow2_table),
        "exp_frac": v.exp_t.frac_bits,
    })
    return c


def _softmax_int(v: IntSoftmax, prefix: str, x_fmt: FixedType, ctx: EmitContext) -> dict:
    f = x_fmt.frac_bits
    out_frac = v.out_bits - (1 if isinstance(v, IvitSoftmax) else 0)
    x_t = _t(ctx, prefix, "score", x_fmt, "softmax input (scores)")
    return {
        "fn": f"{prefix}_softmax",
        "x_t": x_t,
        "max_t": x_t,
        "in_t": _t(ctx, prefix, "sm_int_in", v.in_t, "integer softmax working input"),
        "diff_t": _t(ctx, prefix, "sm_diff", FixedType(x_fmt.width + 1, x_fmt.int_bits + 1),
                     "score - max"),
        "clamp_code": -(CLAMP << f) if f >= 0 else -(CLAMP >> -f),
        "k": v.scale_log2,
        "recip_t": _t(ctx, prefix, "sm_factor", v.recip_t, "integer normalisation factor"),
        "prob_t": _t(ctx, prefix, "sm_prob", v.prob_t, "softmax probabilities"),
        "out_t": _t(ctx, prefix, "sm_out", FixedType(v.out_bits + 1, v.out_bits + 1 - out_frac,
                                                     False), "normalised integer output"),
        "out_bits": v.out_bits,
    }


def _ivit_softmax(v: IvitSoftmax, prefix: str, x_fmt: FixedType, ctx: EmitContext) -> dict:
    c = _softmax_int(v, prefix, x_fmt, ctx)
    c.update({"template": "softmax_ivit.j2", "x0": v.x0, "n_shift": SHIFTMAX_N})
    return c


def _ibert_softmax(v: IbertSoftmax, prefix: str, x_fmt: FixedType, ctx: EmitContext) -> dict:
    c = _softmax_int(v, prefix, x_fmt, ctx)
    x0i, bi, ci = ibert_exp_constants(v.scale_log2)
    c.update({
        "template": "softmax_ibert.j2", "x0i": x0i, "bi": bi, "ci": ci, "n_exp": IBERT_EXP_N,
        "e_t": _t(ctx, prefix, "sm_iexp", v.e_t, "i-exp integer"),
        "c_t": _t(ctx, prefix, "sm_exp_scale", v.c_t, "dyadic exp requantization constant"),
        "c_raw": v.c_raw,
        "exp_t": _t(ctx, prefix, "sm_exp", v.exp_t, "requantized exponentials"),
    })
    return c


SOFTMAX_RENDER: dict[str, VariantRenderer] = {
    OnlineSoftmax.NAME: _online,
    TwoPassSoftmax.NAME: _two_pass,
    Base2Softmax.NAME: _base2,
    IbertSoftmax.NAME: _ibert_softmax,
    IvitSoftmax.NAME: _ivit_softmax,
}


# ---------------------------------------------------------------------------------- GELU
def _gelu_base(v: Any, prefix: str, x_fmt: FixedType, ctx: EmitContext) -> dict:
    return {
        "fn": f"{prefix}_gelu",
        "x_t": _t(ctx, prefix, "gelu_in", x_fmt, "GELU input"),
        "x_frac": x_fmt.frac_bits,
        "out_t": _t(ctx, prefix, "gelu_out", v.out_t, "GELU output"),
        "row_wise": False,
    }


def _gelu_common(v: Any, prefix: str, x_fmt: FixedType, ctx: EmitContext) -> dict:
    c = _gelu_base(v, prefix, x_fmt, ctx)
    c["table_t"] = _t(ctx, prefix, "gelu_table", v.table_t, "GELU table values")
    c["rom"] = ctx.roms.add(v.table)
    return c


def _delta(v: DeltaTableGelu, prefix: str, x_fmt: FixedType, ctx: EmitContext) -> dict:
    c = _gelu_common(v, prefix, x_fmt, ctx)
    c["template"] = "gelu_delta_table.j2"
    c["abs_t"] = _t(ctx, prefix, "gelu_abs", abs_type(x_fmt), "|GELU input|")
    return c


def _lut(v: LutGelu, prefix: str, x_fmt: FixedType, ctx: EmitContext) -> dict:
    return {**_gelu_common(v, prefix, x_fmt, ctx), "template": "gelu_lut.j2"}


def _tanh(v: TanhGelu, prefix: str, x_fmt: FixedType, ctx: EmitContext) -> dict:
    c = _gelu_common(v, prefix, x_fmt, ctx)
    clip = int(math.floor(math.ldexp(v.poly_clip, x_fmt.frac_bits)))
    c.update({
        "template": "gelu_tanh.j2",
        "poly_t": _t(ctx, prefix, "gelu_poly", v.poly_t, "GELU polynomial registers"),
        "poly_abs_t": _t(ctx, prefix, "gelu_poly_abs", abs_type(v.poly_t), "|tanh argument|"),
        "poly_frac": v.poly_t.frac_bits,
        "const_t": _t(ctx, prefix, "gelu_const", v.const_t, "GELU constants C1, C2"),
        "c1_raw": v.c1_raw,
        "c2_raw": v.c2_raw,
        "th_t": _t(ctx, prefix, "gelu_tanh", sub_type(v.table_t, v.table_t), "signed tanh"),
        "clip_lo": max(-clip, x_fmt.min_raw),
        "clip_hi": min(clip, x_fmt.max_raw),
    })
    return c


def _ibert_gelu(v: IbertGelu, prefix: str, x_fmt: FixedType, ctx: EmitContext) -> dict:
    c = _gelu_base(v, prefix, x_fmt, ctx)
    k = v.in_t.frac_bits
    bi, ci, _, shift = ibert_gelu_constants(k)
    c.update({
        "template": "gelu_ibert.j2", "k": k, "bi": bi, "ci": ci, "shift": shift,
        "n": IBERT_GELU_N, "c_raw": v.c_raw,
        "in_t": _t(ctx, prefix, "gelu_int_in", v.in_t, "i-GELU working input"),
        "v_t": _t(ctx, prefix, "gelu_int", v.v_t, "i-GELU integer result"),
        "c_t": _t(ctx, prefix, "gelu_scale", v.c_t, "dyadic requantization constant"),
    })
    return c


def _ivit_gelu(v: IvitGelu, prefix: str, x_fmt: FixedType, ctx: EmitContext) -> dict:
    c = _gelu_base(v, prefix, x_fmt, ctx)
    k = v.in_t.frac_bits
    c.update({
        "template": "gelu_ivit.j2", "row_wise": True, "k": k, "x0": shiftgelu_x0(k),
        "n_shift": SHIFTGELU_N, "sigmoid_bits": v.sigmoid_bits,
        "in_t": _t(ctx, prefix, "gelu_int_in", v.in_t, "ShiftGELU working input"),
        "prod_t": _t(ctx, prefix, "gelu_prod", v.prod_t, "ShiftGELU product q * sigmoid"),
    })
    return c


GELU_RENDER: dict[str, VariantRenderer] = {
    DeltaTableGelu.NAME: _delta,
    LutGelu.NAME: _lut,
    TanhGelu.NAME: _tanh,
    IbertGelu.NAME: _ibert_gelu,
    IvitGelu.NAME: _ivit_gelu,
}


# ----------------------------------------------------------------------------- LayerNorm
def _sum_type(t: FixedType, d: int) -> FixedType:
    """Exact accumulator of ``d`` terms of ``t`` (as ``vitaccel.units.layernorm``)."""
    grow = (d - 1).bit_length() + (not t.signed)
    return FixedType(t.width + grow, t.int_bits + grow)


def _layernorm_common(v: FixedLayerNorm, prefix: str, x_fmt: FixedType, d: int,
                      ctx: EmitContext) -> dict:
    sum_fmt, sq_sum_fmt = _sum_type(x_fmt, d), _sum_type(v.var_t, d)
    return {
        "node_template": "layernorm.j2",
        "x_t": _t(ctx, prefix, "ln_in", x_fmt, "LayerNorm input"),
        "sum_t": _t(ctx, prefix, "ln_sum", sum_fmt, "exact sum of the inputs"),
        "sum_frac": sum_fmt.frac_bits,
        "sq_sum_t": _t(ctx, prefix, "ln_sq_sum", sq_sum_fmt, "exact sum of the squares"),
        "sq_sum_frac": sq_sum_fmt.frac_bits,
        "eps_raw": v.eps_raw,
        "mean_t": _t(ctx, prefix, "ln_mean", v.mean_t, "LayerNorm mean"),
        "centered_t": _t(ctx, prefix, "ln_centered", v.centered_t, "x - mean"),
        "var_t": _t(ctx, prefix, "ln_var", v.var_t, "LayerNorm variance"),
        "var_frac": v.var_t.frac_bits,
        "rsqrt_t": _t(ctx, prefix, "ln_rsqrt", v.rsqrt_t, "1/sqrt(var + eps)"),
        "norm_t": _t(ctx, prefix, "ln_norm", v.norm_t, "normalised value"),
        "ln_out_t": _t(ctx, prefix, "ln_out", v.out_t, "LayerNorm variant output"),
        "rsqrt_fn": f"{prefix}_rsqrt",
    }


def _rsqrt_table(v: RsqrtTableLayerNorm, prefix: str, x_fmt: FixedType, d: int,
                 ctx: EmitContext) -> dict:
    c = _layernorm_common(v, prefix, x_fmt, d, ctx)
    k = v.table.x_frac_bits
    c.update({
        "template": "layernorm_rsqrt_table.j2",
        "rsqrt_rom": ctx.roms.add(v.table),
        "rsqrt_table_t": _t(ctx, prefix, "ln_rsqrt_table", v.rsqrt_table_t, "1/sqrt(m) ROM"),
        "rsqrt_table_frac": v.rsqrt_table_t.frac_bits,
        "newton_t": _t(ctx, prefix, "ln_newton", v.newton_t, "Newton intermediates"),
        "m_t": _t(ctx, prefix, "ln_mantissa", FixedType(k + 2, 2, False),
                  "variance mantissa in [1, 4)"),
        "k": k,
        "newton_steps": v.newton_steps,
    })
    return c


def _isqrt(v: IsqrtLayerNorm, prefix: str, x_fmt: FixedType, d: int,
           ctx: EmitContext) -> dict:
    c = _layernorm_common(v, prefix, x_fmt, d, ctx)
    fs, fr = v.sqrt_t.frac_bits, v.rsqrt_t.frac_bits
    c.update({
        "template": "layernorm_isqrt.j2",
        "sqrt_t": _t(ctx, prefix, "ln_sqrt", v.sqrt_t, "square root of the variance"),
        "radicand_shift": 2 * fs - v.var_t.frac_bits,
        "sqrt_frac": fs,
        "rsqrt_frac": fr,
    })
    return c


def _ivit_layernorm(v: IvitLayerNorm, prefix: str, x_fmt: FixedType, d: int,
                    ctx: EmitContext) -> dict:
    c_raw, c_t = v.norm_constant(d)
    return {
        "node_template": "layernorm_ivit.j2",
        "in_t": _t(ctx, prefix, "ln_int_in", v.in_t, "I-LayerNorm working input"),
        "z_t": _t(ctx, prefix, "ln_z", Z_T, "normalised integer"),
        "c_t": _t(ctx, prefix, "ln_scale", c_t, "dyadic constant sqrt(D) / 2^30"),
        "c_raw": c_raw,
        "norm_t": _t(ctx, prefix, "ln_norm", v.norm_t, "normalised value"),
        "ln_out_t": _t(ctx, prefix, "ln_out", v.out_t, "LayerNorm variant output"),
        "k0": LAYERNORM_K0,
        "iterations": LAYERNORM_ITERATIONS,
    }


LAYERNORM_RENDER: dict[str, Callable[..., dict[str, Any]]] = {
    RsqrtTableLayerNorm.NAME: _rsqrt_table,
    IsqrtLayerNorm.NAME: _isqrt,
    IvitLayerNorm.NAME: _ivit_layernorm,
}

