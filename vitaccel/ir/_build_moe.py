"""Planning of mixture-of-experts blocks (op ``moe``; semantics in ``vitaccel.units.moe``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vitaccel.ir._build import Numerics, Plan, Role, VariantRef, _bias, _weight

__all__ = ["plan_moe"]


def plan_moe(plans: list[Plan], name: str, mlp: Any, x: str, residual: str, cfg: Any,
             numerics: Numerics) -> str:
    """Append the ``moe`` node of block MLP ``mlp`` (a ``vitaccel.models.MoE``).

    Parameters
    ----------
    plans : list of Plan
        The plans so far; one plan is appended.
    name : str
        Node name (``blocks.{i}.mlp``).
    mlp : vitaccel.models.MoE
        The float module: ``gates`` (one ``Linear(D, E)`` per task) and ``experts``
        (``Mlp(D, H)`` each).
    x, residual : str
        Producers of the MoE input (norm2 output) and of the residual (block input + attn).
    cfg : ViTConfig
        Model configuration (token count, width, top-k).
    numerics : Numerics
        Softmax and GELU variant names.

    Returns
    -------
    str
        The name of the appended node.
    """
    d, t = cfg.embed_dim, cfg.num_tokens
    experts = list(mlp.experts)
    gate_w = np.stack([_weight(g) for g in mlp.gates])
    gate_b = np.stack([_bias(g, len(experts)) for g in mlp.gates])
    fc1_w = np.stack([_weight(e.fc1) for e in experts])
    fc1_b = np.stack([_bias(e.fc1, fc1_w.shape[1]) for e in experts])
    fc2_w = np.stack([_weight(e.fc2) for e in experts])
    fc2_b = np.stack([_bias(e.fc2, d) for e in experts])
    plans.append(Plan(
        name, "moe", (x, residual), (t, d), "act",
        attrs={
            "num_experts": len(experts), "top_k": int(mlp.top_k), "acc_t": Role("accum"),
            "product_t": Role("product"), "softmax": VariantRef("softmax", numerics.softmax),
            "gelu": VariantRef("gelu", numerics.gelu), "hidden_t": Role("moe.hidden"),
            "scaled_t": Role("moe.scaled"), "combine_t": Role("moe.accum"),
            "select": "score",
        },
        params={
            "gate_weight": (gate_w, "weight"), "gate_bias": (gate_b, "bias"),
            "fc1_weight": (fc1_w, "weight"), "fc1_bias": (fc1_b, "bias"),
            "fc2_weight": (fc2_w, "weight"), "fc2_bias": (fc2_b, "bias"),
        },
    ))
    return name
