"""Planning of early-exit heads (ops ``grid_conv`` and ``exit_head``; semantics in
``vitaccel.units.exits``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vitaccel.ir._build import (
    Numerics,
    Plan,
    Role,
    VariantRef,
    _bias,
    _linear_plan,
    _norm_plan,
    _np,
    _weight,
    attention_plan,
)

__all__ = ["plan_exit", "exit_node_name", "LOG_STEP_LOG2", "LN2_FRAC_BITS"]

LOG_STEP_LOG2 = -6
"""Step 2**-6 of the ln(m) ROM over [1, 2] (65 entries) of entropy-rule exits."""

LN2_FRAC_BITS = 24
"""ln(2) is ``ap_ufixed<24, 0>`` (rounded to nearest) in entropy-rule exits."""


def exit_node_name(j: int) -> str:
    """Name of the ``exit_head`` node of exit ``j`` (its body nodes are ``exits.{j}.*``)."""
    return f"exits.{j}"


def plan_exit(plans: list[Plan], j: int, head: Any, block: int, x: str, cfg: Any,
              numerics: Numerics) -> str:
    """Append the nodes of exit head ``j`` (``vitaccel.models.ExitHead``) reading ``x``.

    Parameters
    ----------
    plans : list of Plan
        The plans so far; the head's nodes are appended.
    j : int
        Exit index (position in ``cfg.exits.blocks``).
    head : vitaccel.models.ExitHead
        The float module (``norm``, optional ``pw``/``dw`` or ``attn``, ``head``).
    block : int
        Index of the block after which the head sits.
    x : str
        Producer of the block output.
    cfg : ViTConfig
        Model configuration (exit rule and threshold in ``cfg.exits``).
    numerics : Numerics
        Unit variants (LayerNorm, GELU, softmax) and the attention schedule.

    Returns
    -------
    str
        The ``exit_head`` node name.
    """
    pre = exit_node_name(j)
    t, d, npre = cfg.num_tokens, cfg.embed_dim, cfg.num_prefix_tokens
    plans.append(_norm_plan(f"{pre}.norm", head.norm, x, (t, d), cfg, numerics))
    body = f"{pre}.norm"
    if head.kind == "local":
        gelu = VariantRef("gelu", numerics.gelu)
        pw = _np(head.pw.weight).reshape(d, d)
        dw = _np(head.dw.weight).reshape(d, 3, 3)
        for name, kind, w, conv in (("pw", "pointwise", pw, head.pw),
                                    ("dw", "depthwise", dw, head.dw)):
            plans.append(Plan(
                f"{pre}.{name}", "grid_conv", (body,), (t, d), "act",
                attrs={"kind": kind, "grid": tuple(cfg.grid_size), "num_prefix": npre,
                       "acc_t": Role("accum"), "product_t": Role("product"), "gelu": gelu},
                params={"weight": (w, "weight"), "bias": (_bias(conv, d), "bias")},
            ))
            body = f"{pre}.{name}"
    elif head.kind == "global":
        body = _plan_global(plans, pre, head, body, cfg, numerics)
    rule = cfg.exits.rule
    plans.append(Plan(
        pre, "exit_head", (body,), (cfg.num_classes,), "logits",
        attrs={"rule": rule, "exit_index": j, "after_block": block, "num_prefix": npre,
               "pool_t": Role("exit.pool"), "acc_t": Role("accum"),
               "product_t": Role("product"),
               "softmax": VariantRef("softmax", numerics.softmax),
               "log_t": Role("exit.log_table"), "log_step_log2": LOG_STEP_LOG2,
               "ln2_frac_bits": LN2_FRAC_BITS},
        params={"weight": (_weight(head.head), "head.weight"),
                "bias": (_bias(head.head, cfg.num_classes), "head.bias"),
                "mean_scale": (np.array(1.0 / cfg.num_patches), "mean_scale"),
                "threshold": (np.array(float(cfg.exits.threshold)),
                              "exit.prob" if rule == "max_prob" else "exit.entropy")},
    ))
    return pre


def _plan_global(plans: list[Plan], pre: str, head: Any, h: str, cfg: Any,
                 numerics: Numerics) -> str:
    """``h + attn(h)``: qkv (scale folded into q), attention, proj with residual ``h``."""
    t, d, hd = cfg.num_tokens, cfg.embed_dim, cfg.head_dim
    attn = head.attn
    w, b = _weight(attn.qkv), _bias(attn.qkv, 3 * d)
    scale = hd**-0.5
    w[:d] *= scale
    b[:d] *= scale
    plans.append(_linear_plan(f"{pre}.attn.qkv", attn.qkv, (h,), t, "attn.bias", weight=w,
                              bias=b))
    plans.append(attention_plan(f"{pre}.attn", f"{pre}.attn.qkv", cfg, numerics))
    plans.append(_linear_plan(f"{pre}.attn.proj", attn.proj, (f"{pre}.attn", h), t,
                              "attn.bias"))
    return f"{pre}.attn.proj"
