"""Classifier head: pool the token features, then a linear layer into the logits format.

Pooling ``cls`` takes token 0. ``cls_dist`` (DeiT) averages two heads: the class token through
``weight``/``bias`` and the distillation token (token 1) through ``weight_dist``/``bias_dist``;
their accumulators are added exactly and halved exactly (one more fractional bit) before the
assignment to the logits format. ``mean`` averages the patch tokens: the exact sum times the
constant ``mean_scale`` (1/patches in its own format, a node parameter), then cast to the
accumulator input format ``pool_t``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from vitaccel.fixed import FixedType, fixed_add, fixed_mul, sum_type
from vitaccel.ir import Node
from vitaccel.units.linear import matmul_rows

__all__ = ["simulate", "reference"]


def _pool_mean(x: np.ndarray, x_t: FixedType, node: Node, overflow: dict[str, int]):
    npre = node.attrs["num_prefix"]
    total = x[:, npre:].sum(axis=1)
    sum_t = sum_type(x_t, x.shape[1] - npre)
    scale = node.params["mean_scale"]
    prod, prod_t = fixed_mul(total, sum_t, scale.raw, scale.fmt)
    pool_t = node.attrs["pool_t"]
    out, n = pool_t.cast(prod, prod_t, return_overflow=True)
    overflow["pool"] = overflow.get("pool", 0) + int(n)
    return out, pool_t


def simulate(node: Node, inputs: list[np.ndarray], fmts: list[FixedType],
             overflow: dict[str, int]) -> np.ndarray:
    """Bit-exact head: features (B, T, D) -> logits (B, classes)."""
    x, x_t = inputs[0], fmts[0]
    pooling = node.attrs["pooling"]
    acc_t: FixedType = node.attrs["acc_t"]
    if pooling == "mean":
        pooled, pooled_t = _pool_mean(x, x_t, node, overflow)
        y, y_t = matmul_rows(pooled, pooled_t, node, overflow), acc_t
    elif pooling == "cls":
        y, y_t = matmul_rows(x[:, 0], x_t, node, overflow), acc_t
    elif pooling == "cls_dist":
        a = matmul_rows(x[:, 0], x_t, node, overflow)
        b = matmul_rows(x[:, 1], x_t, node, overflow, "weight_dist", "bias_dist")
        y, s_t = fixed_add(a, acc_t, b, acc_t)
        y_t = replace(s_t, int_bits=s_t.int_bits - 1)  # same raw bits, value halved exactly
    else:
        raise ValueError(f"head {node.name!r}: unknown pooling {pooling!r}")
    out, n = node.fmt.cast(y, y_t, return_overflow=True)
    overflow["out"] = overflow.get("out", 0) + int(n)
    return out


def reference(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    p = node.params
    pooling = node.attrs["pooling"]
    if pooling == "mean":
        return x[:, node.attrs["num_prefix"]:].mean(axis=1) @ p["weight"].ref.T + p["bias"].ref
    y = x[:, 0] @ p["weight"].ref.T + p["bias"].ref
    if pooling == "cls_dist":
        y = (y + x[:, 1] @ p["weight_dist"].ref.T + p["bias_dist"].ref) / 2
    return y
