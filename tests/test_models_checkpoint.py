"""Checkpoint loading (timm/DeiT formats) and its errors, on checkpoints the tests create."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vitaccel.errors import UsageError
from vitaccel.models import PRESETS, ViTConfig, build_model, load_checkpoint

CFG = ViTConfig(
    name="ckpt-test", img_size=(16, 8), patch_size=4, in_chans=3, embed_dim=16, depth=2,
    num_heads=2, mlp_hidden=24, distilled=True, num_classes=6,
)


def _state(cfg: ViTConfig = CFG, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    model = build_model(cfg)
    return {k: torch.randn(v.shape, generator=gen) * 0.2 for k, v in model.state_dict().items()}


def _reference(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """DeiT-distilled forward in plain tensor algebra on the raw state dict."""
    s = {k: v.double() for k, v in state.items()}
    x = (x - 0.5) / 0.5
    t = torch.nn.functional.conv2d(x, s["patch_embed.proj.weight"], s["patch_embed.proj.bias"],
                                   stride=4).flatten(2).transpose(1, 2)
    b = x.shape[0]
    t = torch.cat([s["cls_token"].expand(b, -1, -1), s["dist_token"].expand(b, -1, -1), t], 1)
    t = t + s["pos_embed"]

    def ln(v: torch.Tensor, name: str) -> torch.Tensor:
        mu = v.mean(-1, keepdim=True)
        var = ((v - mu) ** 2).mean(-1, keepdim=True)
        return (v - mu) / torch.sqrt(var + 1e-6) * s[name + ".weight"] + s[name + ".bias"]

    for i in range(2):
        p = f"blocks.{i}."
        h = ln(t, p + "norm1")
        qkv = h @ s[p + "attn.qkv.weight"].T + s[p + "attn.qkv.bias"]
        q, k, v = qkv.reshape(b, -1, 3, 2, 8).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1) @ v
        t = t + a.transpose(1, 2).reshape(b, -1, 16) @ s[p + "attn.proj.weight"].T \
            + s[p + "attn.proj.bias"]
        h = ln(t, p + "norm2") @ s[p + "mlp.fc1.weight"].T + s[p + "mlp.fc1.bias"]
        h = 0.5 * h * (1 + torch.erf(h / 2**0.5))
        t = t + h @ s[p + "mlp.fc2.weight"].T + s[p + "mlp.fc2.bias"]
    t = ln(t, "norm")
    head = t[:, 0] @ s["head.weight"].T + s["head.bias"]
    dist = t[:, 1] @ s["head_dist.weight"].T + s["head_dist.bias"]
    return (head + dist) / 2


@pytest.mark.parametrize("fmt", ["pth-raw", "pt-model-key", "safetensors", "in-memory"])
def test_loaded_model_matches_reference(tmp_path: Path, fmt: str) -> None:
    state = _state()
    if fmt == "pth-raw":
        src: object = tmp_path / "w.pth"
        torch.save(state, src)
    elif fmt == "pt-model-key":
        src = tmp_path / "w.pt"
        torch.save({"model": state, "epoch": 3}, src)
    elif fmt == "safetensors":
        src = tmp_path / "w.safetensors"
        save_file(state, str(src))
    else:
        src = {"model": state}
    model = load_checkpoint(src, CFG)
    assert not model.training
    x = torch.rand(3, 3, 16, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        got = model.double()(x.double())
    torch.testing.assert_close(got, _reference(state, x.double()), rtol=1e-6, atol=1e-6)


def test_mismatch_lists_missing_unexpected_and_shapes(tmp_path: Path) -> None:
    state = _state()
    del state["blocks.1.norm2.bias"]
    state["blocks.0.attn.q_bias"] = torch.zeros(16)
    state["pos_embed"] = torch.zeros(1, 12, 16)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(UsageError) as info:
        load_checkpoint(path, CFG)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    assert "missing keys: blocks.1.norm2.bias" in msg
    assert "unexpected keys: blocks.0.attn.q_bias" in msg
    assert "shape mismatches (checkpoint vs model): pos_embed (1, 12, 16) vs (1, 10, 16)" in msg


def test_wrong_architecture_lists_keys() -> None:
    state = _state(dataclasses.replace(CFG, distilled=False))
    with pytest.raises(UsageError, match="missing keys: dist_token, head_dist.bias"):
        load_checkpoint(state, CFG)


@pytest.mark.parametrize(
    "name,content,pattern",
    [
        ("junk.pth", b"not a checkpoint", "not a readable PyTorch checkpoint"),
        ("junk.safetensors", b"\x00\x01", "not a readable safetensors file"),
        ("w.ckpt", b"", "unsupported checkpoint type"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes, pattern: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UsageError, match=pattern):
        load_checkpoint(path, CFG)


def test_missing_file_and_non_state_dict(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        load_checkpoint(tmp_path / "absent.pth", CFG)
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(UsageError, match="expected a state dict"):
        load_checkpoint(path, CFG)


def test_moe_and_preset_round_trip(tmp_path: Path) -> None:
    model = build_model("digits-moe")
    path = tmp_path / "moe.pth"
    torch.save({"model": model.state_dict()}, path)
    loaded = load_checkpoint(path, "digits-moe")
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        for task in range(PRESETS["digits-moe"].moe.num_tasks):
            torch.testing.assert_close(loaded(x, task), model.eval()(x, task), rtol=0, atol=0)
