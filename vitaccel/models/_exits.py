"""Early-exit heads (LGViT style) and the exit decision rule."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vitaccel.models._layers import Attention

__all__ = ["ExitHead", "exit_score", "should_exit"]


class ExitHead(nn.Module):
    """Classifier attached after an intermediate block.

    All kinds start with ``h = norm(tokens)`` and end with ``head(f)`` where
    ``f = h'[cls] + mean(h'[patches])`` (only the mean without a class token) and ``h'`` is:

    * ``"linear"``: ``h`` itself;
    * ``"local"``: the patch tokens as a ``(D, gh, gw)`` grid through ``pw`` (1x1 conv), GELU,
      ``dw`` (3x3 depthwise conv, zero padding 1), GELU; prefix tokens pass unchanged;
    * ``"global"``: ``h + attn(h)`` with one multi-head self-attention layer ``attn``.

    Input ``(B, T, D)`` tokens; output ``(B, num_classes)`` logits.
    """

    def __init__(
        self, kind: str, dim: int, num_classes: int, num_heads: int, num_prefix: int,
        grid: tuple[int, int], eps: float,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.num_prefix = num_prefix
        self.grid = grid
        self.norm = nn.LayerNorm(dim, eps=eps)
        if kind == "local":
            self.pw = nn.Conv2d(dim, dim, 1)
            self.dw = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        elif kind == "global":
            self.attn = Attention(dim, num_heads, qkv_bias=True)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        prefix, patches = h[:, : self.num_prefix], h[:, self.num_prefix :]
        if self.kind == "local":
            b, n, d = patches.shape
            grid = patches.transpose(1, 2).reshape(b, d, *self.grid)
            grid = F.gelu(self.dw(F.gelu(self.pw(grid))))
            patches = grid.flatten(2).transpose(1, 2)
        elif self.kind == "global":
            h = h + self.attn(h)
            prefix, patches = h[:, : self.num_prefix], h[:, self.num_prefix :]
        feat = patches.mean(dim=1)
        if self.num_prefix:
            feat = feat + prefix[:, 0]
        return self.head(feat)


def exit_score(logits: torch.Tensor, rule: str) -> torch.Tensor:
    """Per-sample score of ``rule``: max softmax probability, or softmax entropy in nats."""
    probs = logits.softmax(dim=-1)
    if rule == "max_prob":
        return probs.max(dim=-1).values
    return -(probs * torch.log(probs.clamp_min(torch.finfo(probs.dtype).tiny))).sum(dim=-1)


def should_exit(logits: torch.Tensor, rule: str, threshold: float) -> torch.Tensor:
    """Boolean ``(B,)``: ``max_prob >= threshold`` or ``entropy <= threshold``."""
    score = exit_score(logits, rule)
    return score >= threshold if rule == "max_prob" else score <= threshold
