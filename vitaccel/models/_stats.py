"""Parameter and multiply-accumulate counts of a model configuration."""

from __future__ import annotations

from pathlib import Path

from vitaccel.models._config import ViTConfig
from vitaccel.models._zoo import get_config

__all__ = ["count_params", "count_macs", "exit_macs"]


def _linear(n_in: int, n_out: int, bias: bool = True) -> int:
    return n_in * n_out + (n_out if bias else 0)


def count_params(cfg_or_name: ViTConfig | str | Path) -> int:
    """Number of learned parameters (equals ``sum(p.numel())`` of the built model)."""
    cfg = get_config(cfg_or_name)
    d, t = cfg.embed_dim, cfg.num_tokens
    n = cfg.in_chans * cfg.patch_size**2 * d + d + t * d + cfg.num_prefix_tokens * d
    for i in range(cfg.depth):
        n += 4 * d  # norm1, norm2
        n += _linear(d, 3 * d, cfg.qkv_bias) + _linear(d, d)
        if cfg.is_moe_block(i):
            m = cfg.moe
            n += m.num_tasks * _linear(d, m.num_experts, m.gate_bias)
            n += m.num_experts * (_linear(d, m.expert_hidden) + _linear(m.expert_hidden, d))
        else:
            n += _linear(d, cfg.mlp_hidden) + _linear(cfg.mlp_hidden, d)
    n += 2 * d if cfg.final_norm else 0
    if cfg.num_classes:
        n += _linear(d, cfg.num_classes) * (2 if cfg.distilled else 1)
    if cfg.exits is not None:
        per = 2 * d + _linear(d, cfg.num_classes)
        if cfg.exits.head == "local":
            per += _linear(d, d) + 9 * d + d
        elif cfg.exits.head == "global":
            per += _linear(d, 3 * d) + _linear(d, d)
        n += per * len(cfg.exits.blocks)
    return n


def _embed_macs(cfg: ViTConfig) -> int:
    return cfg.num_patches * cfg.in_chans * cfg.patch_size**2 * cfg.embed_dim


def _block_macs(cfg: ViTConfig, index: int) -> int:
    d, t = cfg.embed_dim, cfg.num_tokens
    macs = t * 3 * d * d + 2 * t * t * d + t * d * d
    if cfg.is_moe_block(index):
        m = cfg.moe
        return macs + t * d * m.num_experts + m.top_k * t * 2 * d * m.expert_hidden
    return macs + t * 2 * d * cfg.mlp_hidden


def _head_macs(cfg: ViTConfig) -> int:
    return cfg.embed_dim * cfg.num_classes * (2 if cfg.distilled else 1)


def _exit_head_macs(cfg: ViTConfig) -> int:
    d, t, p = cfg.embed_dim, cfg.num_tokens, cfg.num_patches
    macs = d * cfg.num_classes
    if cfg.exits.head == "local":
        macs += p * d * d + p * 9 * d
    elif cfg.exits.head == "global":
        macs += t * 4 * d * d + 2 * t * t * d
    return macs


def count_macs(cfg_or_name: ViTConfig | str | Path, *, with_exits: bool = False) -> int:
    """Multiply-accumulates of one image's forward pass through all blocks.

    Counts the patch embedding, qkv, ``Q K^T``, ``A V``, proj, MLPs (MoE blocks: the gate plus
    ``top_k`` experts per token) and the head(s); LayerNorm, softmax and GELU are not MACs.
    ``with_exits`` adds every exit head (the cost when no sample exits early).
    """
    cfg = get_config(cfg_or_name)
    macs = _embed_macs(cfg) + sum(_block_macs(cfg, i) for i in range(cfg.depth))
    macs += _head_macs(cfg)
    if with_exits and cfg.exits is not None:
        macs += _exit_head_macs(cfg) * len(cfg.exits.blocks)
    return macs


def exit_macs(cfg_or_name: ViTConfig | str | Path) -> tuple[int, ...]:
    """MACs per image of stopping at each exit: one entry per exit head, then the final head.

    Stopping at exit ``j`` costs the patch embedding, blocks ``0..blocks[j]`` and exit heads
    ``0..j``; the final entry is :func:`count_macs` with every exit head evaluated.
    """
    cfg = get_config(cfg_or_name)
    if cfg.exits is None:
        return (count_macs(cfg),)
    head = _exit_head_macs(cfg)
    out = [
        _embed_macs(cfg) + sum(_block_macs(cfg, i) for i in range(b + 1)) + head * (j + 1)
        for j, b in enumerate(cfg.exits.blocks)
    ]
    out.append(count_macs(cfg, with_exits=True))
    return tuple(out)
