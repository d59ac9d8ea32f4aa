"""The configurable float reference Vision Transformer."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vitaccel.errors import UsageError
from vitaccel.models._config import ViTConfig
from vitaccel.models._exits import ExitHead, should_exit
from vitaccel.models._layers import Block, Mlp, PatchEmbed
from vitaccel.models._moe import MoE
from vitaccel.models._zoo import get_config

__all__ = ["VisionTransformer", "build_model"]


class VisionTransformer(nn.Module):
    """Float ViT with timm's module layout (timm/DeiT checkpoints load as they are).

    Tokens are ``[cls, dist, patch_0, ..., patch_{N-1}]`` (prefix tokens only when configured),
    plus ``pos_embed`` over all of them. ``forward`` takes pixels in ``[0, 1]``, shape
    ``(B, in_chans, H, W)``, normalises them with the config's mean/std, and returns logits
    ``(B, num_classes)`` from the final head (class token, or mean of patch tokens without one;
    DeiT-distilled models average ``head`` and ``head_dist``), or the token features
    ``(B, T, D)`` after the final norm when ``num_classes == 0``.

    The shift/add option only changes weight values (see :func:`to_shiftadd`); a freshly built
    model with ``cfg.shiftadd`` set already uses :class:`ShiftLinear` layers.
    """

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg.in_chans, d, cfg.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if cfg.class_token else None
        self.dist_token = nn.Parameter(torch.zeros(1, 1, d)) if cfg.distilled else None
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_tokens, d))
        self.blocks = nn.ModuleList(
            Block(d, cfg.num_heads, cfg.qkv_bias, cfg.norm_eps, self._make_mlp(i))
            for i in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(d, eps=cfg.norm_eps) if cfg.final_norm else nn.Identity()
        n_cls = cfg.num_classes
        self.head = nn.Linear(d, n_cls) if n_cls > 0 else nn.Identity()
        self.head_dist = nn.Linear(d, n_cls) if cfg.distilled and n_cls > 0 else None
        if cfg.exits is not None:
            self.exits = nn.ModuleList(
                ExitHead(
                    cfg.exits.head, d, n_cls, cfg.num_heads, cfg.num_prefix_tokens,
                    cfg.grid_size, cfg.norm_eps,
                )
                for _ in cfg.exits.blocks
            )
        else:
            self.exits = None
        self._init_weights()
        if cfg.shiftadd is not None:
            from vitaccel.models._shiftadd import convert_linears

            convert_linears(self, cfg.shiftadd)

    def _make_mlp(self, index: int) -> nn.Module:
        cfg = self.cfg
        if cfg.is_moe_block(index):
            m = cfg.moe
            return MoE(
                cfg.embed_dim, m.num_experts, m.expert_hidden, m.top_k, m.num_tasks, m.gate_bias
            )
        return Mlp(cfg.embed_dim, cfg.mlp_hidden)

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for token in (self.cls_token, self.dist_token):
            if token is not None:
                nn.init.trunc_normal_(token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    # -- forward passes --------------------------------------------------------------------

    def _check_input(self, x: torch.Tensor, task: int) -> None:
        cfg = self.cfg
        want = (cfg.in_chans, *cfg.img_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise UsageError(
                f"input: expected shape (B, {want[0]}, {want[1]}, {want[2]}) for model "
                f"{cfg.name!r}, got {tuple(x.shape)}"
            )
        if not 0 <= task < cfg.num_tasks:
            raise UsageError(f"task: expected 0..{cfg.num_tasks - 1} for {cfg.name!r}, got {task}")

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise pixels ``(B, C, H, W)`` and return the input tokens ``(B, T, D)``."""
        mean = torch.tensor(self.cfg.mean, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
        std = torch.tensor(self.cfg.std, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
        x = self.patch_embed((x - mean) / std)
        prefix = [t.expand(x.shape[0], -1, -1) for t in (self.cls_token, self.dist_token)
                  if t is not None]
        return torch.cat([*prefix, x], dim=1) + self.pos_embed

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Final head on normalised tokens ``(B, T, D)`` (features unchanged if no head)."""
        cfg = self.cfg
        if cfg.num_classes == 0:
            return tokens
        if not cfg.class_token:
            return self.head(tokens.mean(dim=1))
        out = self.head(tokens[:, 0])
        if self.head_dist is not None:
            out = (out + self.head_dist(tokens[:, 1])) / 2
        return out

    def forward_features(self, x: torch.Tensor, task: int = 0) -> torch.Tensor:
        """Token features ``(B, T, D)`` after the final norm."""
        self._check_input(x, task)
        t = self.embed(x)
        for blk in self.blocks:
            t = blk(t, task)
        return self.norm(t)

    def forward(self, x: torch.Tensor, task: int = 0) -> torch.Tensor:
        return self.pool(self.forward_features(x, task))

    def forward_all_exits(self, x: torch.Tensor, task: int = 0) -> list[torch.Tensor]:
        """Logits of every exit head in order, then of the final head (for training)."""
        if self.exits is None:
            raise UsageError(f"model {self.cfg.name!r} has no early exits")
        self._check_input(x, task)
        after = dict(zip(self.cfg.exits.blocks, self.exits, strict=True))
        outs: list[torch.Tensor] = []
        t = self.embed(x)
        for i, blk in enumerate(self.blocks):
            t = blk(t, task)
            if i in after:
                outs.append(after[i](t))
        outs.append(self.pool(self.norm(t)))
        return outs

    def forward_exits(
        self, x: torch.Tensor, task: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Dynamic inference: each sample stops at the first exit whose rule fires.

        Returns
        -------
        logits : Tensor, shape (B, num_classes)
            Logits of the head each sample exited at.
        exit_index : LongTensor, shape (B,)
            ``j`` for exit head ``j`` (after block ``cfg.exits.blocks[j]``);
            ``len(cfg.exits.blocks)`` for the final head.
        """
        rule = self.cfg.exits
        outs = self.forward_all_exits(x, task)
        n = len(outs) - 1
        logits = outs[-1].clone()
        index = torch.full((x.shape[0],), n, dtype=torch.long, device=x.device)
        for j in reversed(range(n)):
            fire = should_exit(outs[j], rule.rule, rule.threshold)
            logits[fire] = outs[j][fire]
            index[fire] = j
        return logits, index


def build_model(cfg_or_name: ViTConfig | str | Path) -> VisionTransformer:
    """Build a randomly initialised model from a config, a preset name or a YAML file."""
    return VisionTransformer(get_config(cfg_or_name))
