"""Power-of-two (shift/add) linear layers and conversion from a float model."""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from vitaccel.models._config import ShiftAddConfig
from vitaccel.models._layers import Mlp

__all__ = [
    "ShiftLinear", "pow2_quantize", "to_shiftadd", "convert_linears", "project_shift_weights"
]


def pow2_quantize(w: torch.Tensor, p_min: int, p_max: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split weights into ``sign * 2**exponent``.

    Rule: ``exponent = clip(round(log2|w|), p_min, p_max)`` with exact log-domain rounding
    (``|w| = m * 2**e`` with ``m`` in ``[0.5, 1)`` rounds to ``e`` when ``m >= sqrt(1/2)``, else
    to ``e - 1``; the midpoint is irrational, so there are no ties); ``sign = sign(w)``, except
    that ``sign = 0`` (exponent ``p_min``) when ``|w| < 2**(p_min - 1)``, i.e. when the weight is
    nearer to 0 than to the smallest power ``2**p_min``. Exact powers of two in range map to
    themselves, so the quantizer is idempotent.

    Returns
    -------
    sign : int8 Tensor with values -1, 0, +1
    exponent : int8 Tensor in ``[p_min, p_max]``
    """
    w64 = w.detach().to(torch.float64)
    mag = w64.abs()
    mant, e = torch.frexp(mag)
    exp = torch.where(mant >= math.sqrt(0.5), e, e - 1).clamp(p_min, p_max)
    keep = mag >= 2.0 ** (p_min - 1)
    sign = torch.where(keep, torch.sign(w64), torch.zeros_like(w64))
    exp = torch.where(keep, exp, torch.full_like(exp, p_min))
    return sign.to(torch.int8), exp.to(torch.int8)


class ShiftLinear(nn.Linear):
    """``nn.Linear`` whose effective weight is ``sign * 2**p`` (see :func:`pow2_quantize`).

    ``weight`` holds the latent float weight while fine-tuning (gradients pass through the
    rounding unchanged: straight-through estimator); after :meth:`project_` it holds the
    power-of-two values themselves. The bias stays a float.
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *, p_min: int, p_max: int
    ) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.p_min = p_min
        self.p_max = p_max

    def shift_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sign, exponent)`` int8 tensors of shape ``(out_features, in_features)``."""
        return pow2_quantize(self.weight, self.p_min, self.p_max)

    def quantized_weight(self) -> torch.Tensor:
        """The effective weight ``sign * 2**exponent`` as a float tensor."""
        sign, exp = self.shift_params()
        return sign.to(self.weight.dtype) * torch.pow(2.0, exp.to(self.weight.dtype))

    @torch.no_grad()
    def project_(self) -> None:
        """Replace the latent weight by its power-of-two value."""
        self.weight.copy_(self.quantized_weight())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight + (self.quantized_weight() - self.weight).detach()
        return F.linear(x, w, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p_min={self.p_min}, p_max={self.p_max}"


def _shift_copy(lin: nn.Linear, cfg: ShiftAddConfig) -> ShiftLinear:
    new = ShiftLinear(
        lin.in_features, lin.out_features, lin.bias is not None, p_min=cfg.p_min, p_max=cfg.p_max
    )
    with torch.no_grad():
        new.weight.copy_(lin.weight)
        if lin.bias is not None:
            new.bias.copy_(lin.bias)
    new.project_()
    return new


def convert_linears(model: nn.Module, cfg: ShiftAddConfig) -> None:
    """Replace, in place, the linear layers of ``model.blocks`` that ``cfg.layers`` selects.

    ``"mlp"``: fc1/fc2 of dense MLPs and of experts; ``"all_linear"``: also attention qkv and
    proj. Gates, heads, exit heads and the patch embedding stay float.
    """
    for blk in model.blocks:
        mlps = [blk.mlp] if isinstance(blk.mlp, Mlp) else list(blk.mlp.experts)
        for mlp in mlps:
            mlp.fc1 = _shift_copy(mlp.fc1, cfg)
            mlp.fc2 = _shift_copy(mlp.fc2, cfg)
        if cfg.layers == "all_linear":
            blk.attn.qkv = _shift_copy(blk.attn.qkv, cfg)
            blk.attn.proj = _shift_copy(blk.attn.proj, cfg)


def project_shift_weights(model: nn.Module) -> None:
    """Project every :class:`ShiftLinear` of ``model`` onto its power-of-two weights."""
    for m in model.modules():
        if isinstance(m, ShiftLinear):
            m.project_()


def to_shiftadd(
    model: nn.Module, p_min: int = -8, p_max: int = 0, layers: str = "all_linear"
) -> nn.Module:
    """Return a shift/add copy of a trained float :class:`VisionTransformer`.

    The copy's config gains ``shiftadd=ShiftAddConfig(p_min, p_max, layers)``; the selected
    linear layers become :class:`ShiftLinear` with weights rounded by :func:`pow2_quantize`;
    every other parameter is copied unchanged. ``model`` itself is not modified.
    """
    from vitaccel.models._vit import VisionTransformer

    cfg = dataclasses.replace(
        model.cfg, shiftadd=ShiftAddConfig(p_min=p_min, p_max=p_max, layers=layers)
    )
    new = VisionTransformer(cfg)
    new.load_state_dict(model.state_dict())
    project_shift_weights(new)
    return new
