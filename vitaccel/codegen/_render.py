"""Per-op renderers: ``RENDER[op](node, ctx) -> (template name, template context)``.

Every op kind of ``vitaccel.ir.OPS`` has one entry; a node's template defines one C++
function ``k_<node>`` that reproduces the simulator's function for that op (same formats,
same order of every rounding operation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vitaccel.codegen._context import EmitContext
from vitaccel.codegen._variants import GELU_RENDER, LAYERNORM_RENDER, SOFTMAX_RENDER
from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, add_type, sub_type, sum_type
from vitaccel.ir import Node

__all__ = ["RENDER", "Renderer"]

Renderer = Callable[[Node, EmitContext], tuple[str, dict[str, Any]]]


def _variant(registry: dict, variant: Any, kind: str) -> Callable[..., dict[str, Any]]:
    try:
        return registry[variant.NAME]
    except KeyError:
        raise UsageError(f"codegen: no template for {kind} variant {variant.NAME!r} "
                         f"(expected one of {sorted(registry)})") from None


def _tiles(n: int, tile: int) -> int:
    return -(-n // tile)


def _matmul(node: Node, ctx: EmitContext, n_in: int, n_out: int,
            weight: str | None = "weight", bias: str = "bias") -> dict[str, Any]:
    """Fields of one tiled multiply-accumulate (the unified linear engine); ``weight=None``
    when the weights are not multiplied (the shift kernel reads its sign/exponent instead)."""
    lin = ctx.hw.linear
    return {
        "shift": None,
        "w": ctx.param(node, weight) if weight else None,
        "b": ctx.param(node, bias),
        "acc_t": ctx.typedef(node, "acc", node.attrs["acc_t"], "accumulator"),
        "product_t": ctx.optional_typedef(node, "product", node.attrs["product_t"],
                                          "product format"),
        "n_in": n_in,
        "n_out": n_out,
        "tile_in": min(lin.tile_in, n_in),
        "tile_out": min(lin.tile_out, n_out),
        "in_tiles": _tiles(n_in, min(lin.tile_in, n_in)),
        "out_tiles": _tiles(n_out, min(lin.tile_out, n_out)),
        "ii": lin.pipeline_ii,
    }


def _shift_kernel(node: Node, ctx: EmitContext, x_fmt: FixedType) -> dict[str, Any]:
    """Fields of the shift/add kernel: sign and exponent ROMs and an exact shift register."""
    exp = node.params["shift_exp"].raw
    p_lo, p_hi = int(exp.min()), int(exp.max())
    # holds x itself (before the shift) and every x * 2^p, p in [p_lo, p_hi], and its negation
    int_bits = x_fmt.int_bits + max(p_hi, 0) + 2
    wide = FixedType(int_bits + x_fmt.frac_bits + max(-p_lo, 0), int_bits)
    return {
        "sign": ctx.param(node, "shift_sign"),
        "exp": ctx.param(node, "shift_exp"),
        "wide_t": ctx.typedef(node, "shift_wide", wide, "input shifted by any exponent"),
    }


def _default_term_format(node: Node, x_fmt: FixedType) -> FixedType:
    """The shift kernel's term format when the precision gives none (as
    ``vitaccel.units.shiftadd``): the input's LSB, integer bits for every ``+-x 2^p``."""
    sign, exp = node.params["shift_sign"].raw, node.params["shift_exp"].raw
    active = sign != 0
    p_hi = int(exp[active].max()) if active.any() else 0
    int_bits = x_fmt.int_bits + (0 if x_fmt.signed else 1) + max(p_hi, 0) + 1
    return FixedType(int_bits + x_fmt.frac_bits, int_bits)


def render_linear(node: Node, ctx: EmitContext) -> tuple[str, dict[str, Any]]:
    """Unified linear engine (optionally fused GELU and residual add)."""
    x_shape, _ = ctx.graph.spec(node.inputs[0])
    rows, n_in = x_shape
    c = ctx.base(node)
    kernel = node.attrs.get("kernel", "mac")
    if kernel not in ("mac", "shift"):
        raise UsageError(f"codegen: linear {node.name!r} has unknown kernel {kernel!r}")
    c["mm"] = _matmul(node, ctx, n_in, node.shape[-1],
                      weight=None if kernel == "shift" else "weight")
    if kernel == "shift":
        x_fmt = ctx.tensor_fmt(node.inputs[0])
        c["mm"]["shift"] = _shift_kernel(node, ctx, x_fmt)
        if c["mm"]["product_t"] is None:
            c["mm"]["product_t"] = ctx.typedef(node, "shift_term",
                                               _default_term_format(node, x_fmt),
                                               "shifted term (the input's LSB)")
    c["rows"] = rows
    c["x"] = ctx.arg(node.inputs[0], "x")
    c["residual"] = ctx.arg(node.inputs[1], "r") if node.attrs["residual"] else None
    gelu = node.attrs["gelu"]
    c["gelu"] = None
    if gelu is not None:
        c["gelu"] = _variant(GELU_RENDER, gelu, "gelu")(gelu, c["id"], node.attrs["acc_t"], ctx)
        c["gelu"]["n_row"] = node.shape[-1]
    return "linear.j2", c


def render_patch_embed(node: Node, ctx: EmitContext) -> tuple[str, dict[str, Any]]:
    """Patch embedding: im2col on the fly ((c, kh, kw) feature order) into the linear engine."""
    chans, _, width = ctx.graph.input_shape
    p = node.attrs["patch_size"]
    c = ctx.base(node)
    c["mm"] = _matmul(node, ctx, chans * p * p, node.shape[-1])
    c.update({"x": ctx.arg(node.inputs[0], "img"), "patch": p, "grid_w": width // p,
              "rows": node.shape[0], "chans": chans})
    return "patch_embed.j2", c


def render_embed_tokens(node: Node, ctx: EmitContext) -> tuple[str, dict[str, Any]]:
    """Prefix (class/distillation) tokens then patch tokens, each plus its position."""
    c = ctx.base(node)
    c.update({"x": ctx.arg(node.inputs[0], "x"), "num_prefix": node.attrs["num_prefix"],
              "pos": ctx.param(node, "pos"), "rows": node.shape[0], "d": node.shape[1]})
    c["prefix"] = ctx.param(node, "prefix") if node.attrs["num_prefix"] else None
    return "embed_tokens.j2", c


def render_layernorm(node: Node, ctx: EmitContext) -> tuple[str, dict[str, Any]]:
    """LayerNorm by the node's variant (shared mean/variance/affine datapath)."""
    variant = node.attrs["variant"]
    x_fmt = ctx.tensor_fmt(node.inputs[0])
    rows, d = node.shape
    c = ctx.base(node)
    c.update({"x": ctx.arg(node.inputs[0], "x"), "rows": rows, "d": d,
              "gamma": ctx.param(node, "gamma"), "beta": ctx.param(node, "beta")})
    c["ln"] = _variant(LAYERNORM_RENDER, variant, "layernorm")(variant, c["id"], x_fmt, d, ctx)
    return c["ln"]["node_template"], c


def render_attention(node: Node, ctx: EmitContext) -> tuple[str, dict[str, Any]]:
    """Multi-head attention; ``standard`` or ``reordered`` key order (P query slots)."""
    a = node.attrs
    tokens, d = node.shape
    order, slots = a["order"], a["parallel_queries"]
    if order not in ("standard", "reordered"):
        raise UsageError(f"codegen: attention {node.name!r} has unknown order {order!r}")
    c = ctx.base(node)
    score_fmt: FixedType = a["score_t"]
    c.update({
        "qkv": ctx.arg(node.inputs[0], "qkv"),
        "tokens": tokens, "d": d, "heads": a["num_heads"], "head_dim": a["head_dim"],
        "slots": slots if order == "reordered" else 1,
        "groups": _tiles(tokens, slots if order == "reordered" else 1),
        "lanes": min(ctx.hw.attention.head_dim_lanes, a["head_dim"]),
        "score_t": ctx.typedef(node, "score", score_fmt, "QK^T accumulator"),
        "product_t": ctx.optional_typedef(node, "product", a["product_t"], "product format"),
        "av_acc_t": ctx.typedef(node, "av_acc", a["acc_t"], "A.V accumulator"),
    })
    softmax = a["softmax"]
    c["sm"] = _variant(SOFTMAX_RENDER, softmax, "softmax")(softmax, c["id"], score_fmt, ctx)
    c["sm"]["n"] = tokens
    qk, av = a.get("qk_kernel", "mac"), a.get("av_kernel", "mac")
    if qk not in ("mac", "binary") or av not in ("mac", "log2"):
        raise UsageError(f"codegen: attention {node.name!r} has unknown kernels {qk!r}/{av!r}")
    c["binary"] = None
    if qk == "binary":
        width = max(2, int(a["head_dim"]).bit_length() + 1)
        shift = a["binary_shift"]
        c["binary"] = {"shift": shift, "bin_t": ctx.typedef(
            node, "binary", FixedType(width, width + shift), "popcount score times 2^shift")}
    c["log2"] = None
    if av == "log2":
        min_exp = a["log2_min_exp"]
        c["log2"] = {"min_exp": min_exp, "p_frac": softmax.out_t.frac_bits,
                     "log2_t": ctx.typedef(node, "log2_prob", FixedType(1 - min_exp, 1, False),
                                           "power-of-two probability")}
    template = "attention_reordered.j2" if order == "reordered" and slots > 1 else \
        "attention_standard.j2"
    return template, c


def render_head(node: Node, ctx: EmitContext) -> tuple[str, dict[str, Any]]:
    """Classifier head with ``cls``, ``cls_dist`` or ``mean`` pooling."""
    x_shape, x_fmt = ctx.graph.spec(node.inputs[0])
    tokens, d = x_shape
    pooling = node.attrs["pooling"]
    c = ctx.base(node)
    c["mm"] = _matmul(node, ctx, d, node.shape[0])
    c.update({"x": ctx.arg(node.inputs[0], "x"), "pooling": pooling, "tokens": tokens, "d": d,
              "num_prefix": node.attrs["num_prefix"]})
    acc_fmt: FixedType = node.attrs["acc_t"]
    if pooling == "cls_dist":
        c["w_dist"] = ctx.param(node, "weight_dist")
        c["b_dist"] = ctx.param(node, "bias_dist")
        c["pair_t"] = ctx.typedef(node, "pair", add_type(acc_fmt, acc_fmt), "sum of both heads")
        c["half_t"] = ctx.types.add("vx_half_t", FixedType(1, 0, False), "the constant 0.5")
    elif pooling == "mean":
        scale = node.params["mean_scale"]
        c["pool_sum_t"] = ctx.typedef(node, "pool_sum", sum_type(x_fmt, tokens -
                                      node.attrs["num_prefix"]), "exact sum of patch tokens")
        c["scale_t"] = ctx.typedef(node, "mean_scale", scale.fmt, "1/patches constant")
        c["scale_raw"] = int(scale.raw)
        c["pool_t"] = ctx.typedef(node, "pool", node.attrs["pool_t"], "pooled features")
    elif pooling != "cls":
        raise UsageError(f"codegen: head {node.name!r} has unknown pooling {pooling!r}")
    return "head.j2", c


def render_moe(node: Node, ctx: EmitContext) -> tuple[str, dict[str, Any]]:
    """Task-gated mixture of experts with top-k routing and expert queues."""
    a = node.attrs
    tokens, d = node.shape
    experts, hidden = a["num_experts"], node.params["fc1_weight"].shape[1]
    acc_fmt: FixedType = a["acc_t"]
    c = ctx.base(node)
    c.update({
        "x": ctx.arg(node.inputs[0], "x"), "residual": ctx.arg(node.inputs[1], "r"),
        "tokens": tokens, "d": d, "experts": experts, "hidden": hidden,
        "top_k": a["top_k"], "select": a["select"],
        "acc_t": ctx.typedef(node, "acc", acc_fmt, "accumulator"),
        "product_t": ctx.optional_typedef(node, "product", a["product_t"], "product format"),
        "hidden_t": ctx.typedef(node, "hidden", a["hidden_t"], "expert hidden buffer"),
        "scaled_t": ctx.typedef(node, "scaled", a["scaled_t"], "probability x expert output"),
        "combine_t": ctx.typedef(node, "combine", a["combine_t"], "combined expert outputs"),
        "tile_in": min(ctx.hw.linear.tile_in, d), "ii": ctx.hw.linear.pipeline_ii,
    })
    for key, short in (("gate_weight", "gate_w"), ("gate_bias", "gate_b"),
                       ("fc1_weight", "fc1_w"), ("fc1_bias", "fc1_b"),
                       ("fc2_weight", "fc2_w"), ("fc2_bias", "fc2_b")):
        c[short] = ctx.param(node, key)
    if a["select"] not in ("score", "prob"):
        raise UsageError(f"codegen: moe {node.name!r} has unknown select rule {a['select']!r}")
    softmax, gelu = a["softmax"], a["gelu"]
    c["sm"] = _variant(SOFTMAX_RENDER, softmax, "softmax")(softmax, c["id"], acc_fmt, ctx)
    c["sm"]["n"] = experts
    c["gelu"] = _variant(GELU_RENDER, gelu, "gelu")(gelu, c["id"], acc_fmt, ctx)
    c["gelu"]["n_row"] = hidden
    return "moe.j2", c


def render_grid_conv(node: Node, ctx: EmitContext) -> tuple[str, dict[str, Any]]:
    """1x1 (linear engine) or 3x3 depthwise convolution on the patch grid, fused GELU."""
    a = node.attrs
    tokens, d = node.shape
    kind = a["kind"]
    if kind not in ("pointwise", "depthwise"):
        raise UsageError(f"codegen: grid_conv {node.name!r} has unknown kind {kind!r}")
    c = ctx.base(node)
    c.update({"x": ctx.arg(node.inputs[0], "x"), "kind": kind, "tokens": tokens, "d": d,
              "grid_h": a["grid"][0], "grid_w": a["grid"][1], "num_prefix": a["num_prefix"],
              "ii": ctx.hw.linear.pipeline_ii})
    if kind == "pointwise":
        c["mm"] = _matmul(node, ctx, d, d)
    else:
        c["w"], c["b"] = ctx.param(node, "weight"), ctx.param(node, "bias")
        c["acc_t"] = ctx.typedef(node, "acc", a["acc_t"], "accumulator")
        c["product_t"] = ctx.optional_typedef(node, "product", a["product_t"], "product format")
    gelu = a["gelu"]
    c["gelu"] = None
    if gelu is not None:
        c["gelu"] = _variant(GELU_RENDER, gelu, "gelu")(gelu, c["id"], a["acc_t"], ctx)
        c["gelu"]["n_row"] = d
    return "grid_conv.j2", c


def render_exit_head(node: Node, ctx: EmitContext) -> tuple[str, dict[str, Any]]:
    """Early-exit classifier and its fixed-point exit decision (max_prob or entropy)."""
    from vitaccel.units.exits import ln2_code, log_table

    a = node.attrs
    x_shape, x_fmt = ctx.graph.spec(node.inputs[0])
    tokens, d = x_shape
    rule = a["rule"]
    if rule not in ("max_prob", "entropy"):
        raise UsageError(f"codegen: exit head {node.name!r} has unknown rule {rule!r}")
    npre = a["num_prefix"]
    n = tokens - npre
    scale, threshold = node.params["mean_scale"], node.params["threshold"]
    c = ctx.base(node)
    c.update({
        "x": ctx.arg(node.inputs[0], "x"), "tokens": tokens, "d": d, "num_prefix": npre,
        "rule": rule, "after_block": a["after_block"],
        "mm": _matmul(node, ctx, d, node.shape[0]),
        "pool_sum_t": ctx.typedef(node, "pool_sum", sum_type(x_fmt, n), "exact patch sum"),
        "pool_t": ctx.typedef(node, "pool", a["pool_t"], "pooled features"),
        "scale_t": ctx.typedef(node, "mean_scale", scale.fmt, "1/patches constant"),
        "scale_raw": int(scale.raw),
        "decision_t": ctx.typedef(node, "decision", threshold.fmt, "exit score"),
        "threshold_raw": int(threshold.raw),
    })
    softmax = a["softmax"]
    c["sm"] = _variant(SOFTMAX_RENDER, softmax, "softmax")(softmax, c["id"], node.fmt, ctx)
    c["sm"]["n"] = node.shape[0]
    if rule == "entropy":
        table = log_table(node)
        ln2_raw, ln2_fmt = ln2_code(node)
        c.update({
            "log_rom": ctx.roms.add(table),
            "log_t": ctx.typedef(node, "log", table.fmt, "ln(m) ROM format"),
            "ln2_t": ctx.typedef(node, "ln2", ln2_fmt, "ln(2) constant"),
            "ln2_raw": ln2_raw,
            "recip_frac": softmax.recip_t.frac_bits,
            "diff_t": ctx.typedef(node, "dist", sub_type(node.fmt, node.fmt), "max - logit"),
        })
    return "exit_head.j2", c


RENDER: dict[str, Renderer] = {
    "patch_embed": render_patch_embed,
    "embed_tokens": render_embed_tokens,
    "layernorm": render_layernorm,
    "linear": render_linear,
    "attention": render_attention,
    "head": render_head,
    "moe": render_moe,
    "grid_conv": render_grid_conv,
    "exit_head": render_exit_head,
}

