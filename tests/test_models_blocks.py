"""Reference-model blocks against PyTorch's own ops, and a whole-model independent reference."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vitaccel.errors import UsageError
from vitaccel.models import PRESETS, ViTConfig, build_model
from vitaccel.models._layers import Attention, Mlp


def _randomise(model: nn.Module, seed: int = 0, scale: float = 0.3) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)
    return model.eval()


def _mha_reference(attn: Attention, x: torch.Tensor) -> torch.Tensor:
    d = x.shape[-1]
    mha = nn.MultiheadAttention(d, attn.num_heads, bias=True, batch_first=True).double()
    with torch.no_grad():
        mha.in_proj_weight.copy_(attn.qkv.weight)
        if attn.qkv.bias is None:
            mha.in_proj_bias.zero_()
        else:
            mha.in_proj_bias.copy_(attn.qkv.bias)
        mha.out_proj.weight.copy_(attn.proj.weight)
        mha.out_proj.bias.copy_(attn.proj.bias)
    return mha(x, x, x, need_weights=False)[0]


@pytest.mark.parametrize("heads,qkv_bias", [(1, True), (3, True), (4, False)])
def test_attention_matches_multihead_attention(heads: int, qkv_bias: bool) -> None:
    d = 24
    attn = _randomise(Attention(d, heads, qkv_bias).double())
    x = torch.randn(2, 7, d, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(attn(x), _mha_reference(attn, x), rtol=1e-10, atol=1e-10)


def test_attention_uses_head_dim_scale() -> None:
    attn = _randomise(Attention(8, 2).double())
    x = torch.randn(1, 5, 8, dtype=torch.float64)
    q, k, v = attn.qkv(x).reshape(1, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    p = torch.softmax(q @ k.transpose(-1, -2) / 2.0, dim=-1)  # head_dim 4 -> scale 1/2
    want = attn.proj((p @ v).transpose(1, 2).reshape(1, 5, 8))
    torch.testing.assert_close(attn(x), want)


def test_mlp_is_exact_gelu() -> None:
    mlp = _randomise(Mlp(6, 10).double())
    x = torch.randn(3, 6, dtype=torch.float64)
    h = x @ mlp.fc1.weight.T + mlp.fc1.bias
    h = 0.5 * h * (1 + torch.erf(h / 2**0.5))
    torch.testing.assert_close(mlp(x), h @ mlp.fc2.weight.T + mlp.fc2.bias)
    assert not torch.allclose(mlp(x), mlp.fc2(F.gelu(mlp.fc1(x), approximate="tanh")),
                              rtol=0, atol=1e-9)


def _independent_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's forward rebuilt from torch primitives and its state dict only."""
    cfg: ViTConfig = model.cfg
    sd = {k: v.double() for k, v in model.state_dict().items()}
    mean = torch.tensor(cfg.mean, dtype=torch.float64).view(1, -1, 1, 1)
    std = torch.tensor(cfg.std, dtype=torch.float64).view(1, -1, 1, 1)
    p = cfg.patch_size
    t = F.conv2d((x - mean) / std, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"],
                 stride=p).flatten(2).transpose(1, 2)
    prefix = [sd[k].expand(x.shape[0], -1, -1) for k in ("cls_token", "dist_token") if k in sd]
    t = torch.cat([*prefix, t], dim=1) + sd["pos_embed"]
    d = cfg.embed_dim
    for i in range(cfg.depth):
        b = f"blocks.{i}."
        h = F.layer_norm(t, (d,), sd[b + "norm1.weight"], sd[b + "norm1.bias"], cfg.norm_eps)
        mha = nn.MultiheadAttention(d, cfg.num_heads, batch_first=True).double()
        with torch.no_grad():
            mha.in_proj_weight.copy_(sd[b + "attn.qkv.weight"])
            mha.in_proj_bias.copy_(sd.get(b + "attn.qkv.bias", torch.zeros(3 * d)))
            mha.out_proj.weight.copy_(sd[b + "attn.proj.weight"])
            mha.out_proj.bias.copy_(sd[b + "attn.proj.bias"])
        t = t + mha(h, h, h, need_weights=False)[0]
        h = F.layer_norm(t, (d,), sd[b + "norm2.weight"], sd[b + "norm2.bias"], cfg.norm_eps)
        h = F.linear(h, sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"])
        t = t + F.linear(F.gelu(h), sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"])
    if cfg.final_norm:
        t = F.layer_norm(t, (d,), sd["norm.weight"], sd["norm.bias"], cfg.norm_eps)
    if cfg.num_classes == 0:
        return t
    if not cfg.class_token:
        return F.linear(t.mean(1), sd["head.weight"], sd["head.bias"])
    out = F.linear(t[:, 0], sd["head.weight"], sd["head.bias"])
    if cfg.distilled:
        out = (out + F.linear(t[:, 1], sd["head_dist.weight"], sd["head_dist.bias"])) / 2
    return out


SMALL = ViTConfig(
    name="small", img_size=(8, 12), patch_size=4, in_chans=3, embed_dim=12, depth=2,
    num_heads=3, mlp_hidden=20, num_classes=5, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25),
)
VARIANTS = {
    "cls": {},
    "distilled": {"distilled": True},
    "no-cls-avg": {"class_token": False},
    "features": {"num_classes": 0, "final_norm": False},
    "no-qkv-bias": {"qkv_bias": False, "norm_eps": 1e-5},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_model_matches_independent_reference(variant: str) -> None:
    cfg = dataclasses.replace(SMALL, **VARIANTS[variant])
    model = _randomise(build_model(cfg).double())
    x = torch.rand(3, 3, 8, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = model(x)
        want = _independent_forward(model, x)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    assert got.shape == ((3, cfg.num_tokens, 12) if cfg.num_classes == 0 else (3, 5))


def test_timm_parameter_names() -> None:
    with torch.device("meta"):
        names = set(build_model("deit-tiny-distilled").state_dict())
        moe = build_model("edge-moe").state_dict()
    for key in ("cls_token", "dist_token", "pos_embed", "patch_embed.proj.weight",
                "blocks.11.attn.qkv.weight", "blocks.0.attn.proj.bias", "blocks.3.norm2.weight",
                "blocks.5.mlp.fc1.weight", "blocks.5.mlp.fc2.bias", "norm.weight", "head.weight",
                "head_dist.bias"):
        assert key in names
    assert "blocks.1.mlp.gates.1.weight" in moe and "blocks.1.mlp.experts.15.fc2.bias" in moe
    assert "blocks.0.mlp.fc1.weight" in moe and "blocks.1.mlp.fc1.weight" not in moe


def test_bad_input_shape_and_task() -> None:
    model = build_model("digits-dense")
    with pytest.raises(UsageError, match=r"expected shape \(B, 1, 8, 8\)"):
        model(torch.zeros(1, 3, 8, 8))
    with pytest.raises(UsageError, match="task"):
        model(torch.zeros(1, 1, 8, 8), task=1)
    moe = build_model("digits-moe")
    moe(torch.zeros(1, 1, 8, 8), task=1)
    with pytest.raises(UsageError, match="task"):
        moe(torch.zeros(1, 1, 8, 8), task=2)


def test_edge_moe_shape() -> None:
    cfg = PRESETS["edge-moe"]
    assert cfg.num_tokens == 129 and cfg.head_dim == 64
    assert [cfg.is_moe_block(i) for i in range(12)] == [i % 2 == 1 for i in range(12)]
