"""Patch embedding (convolution as a matmul) and token embedding (class tokens + positions)."""

from __future__ import annotations

import numpy as np

from vitaccel.fixed import Epilogue, FixedType, fixed_add
from vitaccel.ir import Node
from vitaccel.units.linear import matmul_rows

__all__ = ["im2col", "patch_simulate", "patch_reference", "tokens_simulate", "tokens_reference"]


def im2col(images: np.ndarray, patch: int) -> np.ndarray:
    """(B, C, H, W) -> (B, patches, C*patch*patch), patches row-major, features (c, kh, kw)."""
    b, c, h, w = images.shape
    gh, gw = h // patch, w // patch
    x = images[:, :, : gh * patch, : gw * patch].reshape(b, c, gh, patch, gw, patch)
    return x.transpose(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c * patch * patch)


def patch_simulate(node: Node, inputs: list[np.ndarray], fmts: list[FixedType],
                   overflow: dict[str, int]) -> np.ndarray:
    """Bit-exact patch embedding: pixels (B, C, H, W) -> tokens (B, patches, D)."""
    cols = im2col(inputs[0], node.attrs["patch_size"])
    return matmul_rows(cols, fmts[0], node, overflow, epilogue=Epilogue(node.fmt, overflow))


def patch_reference(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    cols = im2col(inputs[0], node.attrs["patch_size"])
    return cols @ node.params["weight"].ref.T + node.params["bias"].ref


def tokens_simulate(node: Node, inputs: list[np.ndarray], fmts: list[FixedType],
                    overflow: dict[str, int]) -> np.ndarray:
    """Prefix tokens then patch tokens, each plus its positional embedding, cast to the output."""
    x, x_t = inputs[0], fmts[0]
    prefix, pos = node.params["prefix"], node.params["pos"]
    npre = node.attrs["num_prefix"]
    parts = []
    if npre:
        s, s_t = fixed_add(prefix.raw, prefix.fmt, pos.raw[:npre], pos.fmt)
        head, n1 = node.fmt.cast(s, s_t, return_overflow=True)
        parts.append(np.broadcast_to(head, (x.shape[0],) + head.shape))
        overflow["out"] = overflow.get("out", 0) + int(n1) * x.shape[0]
    s, s_t = fixed_add(x, x_t, pos.raw[npre:], pos.fmt)
    body, n2 = node.fmt.cast(s, s_t, return_overflow=True)
    overflow["out"] = overflow.get("out", 0) + int(n2)
    parts.append(body)
    return np.concatenate(parts, axis=1)


def tokens_reference(node: Node, inputs: list[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    prefix, pos = node.params["prefix"].ref, node.params["pos"].ref
    pre = np.broadcast_to(prefix, (x.shape[0],) + prefix.shape)
    return np.concatenate([pre, x], axis=1) + pos
