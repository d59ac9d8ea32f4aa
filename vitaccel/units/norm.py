"""LayerNorm nodes: the node's LayerNorm variant applied over the last axis."""

from __future__ import annotations

import numpy as np

from vitaccel.fixed import FixedType
from vitaccel.ir import Node

__all__ = ["simulate", "reference"]


def simulate(node: Node, inputs: list[np.ndarray], fmts: list[FixedType],
             overflow: dict[str, int]) -> np.ndarray:
    """Bit-exact LayerNorm by ``node.attrs["variant"]``, then assignment to the node format."""
    variant = node.attrs["variant"]
    g, b = node.params["gamma"], node.params["beta"]
    out = variant.forward_assigned(inputs[0], fmts[0], g.raw, g.fmt, b.raw, b.fmt, node.fmt,
                                   "out", overflow)
    overflow.setdefault("out", 0)  # reported even when nothing overflowed
    return out


def reference(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    """nn.LayerNorm semantics in float64 (biased variance, eps inside the square root)."""
    x = inputs[0]
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + node.attrs["eps"])
    return y * node.params["gamma"].ref + node.params["beta"].ref
