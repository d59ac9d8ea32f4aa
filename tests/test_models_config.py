"""Model configs: presets, parameter and MAC counts, YAML model files and their errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from vitaccel.errors import UsageError
from vitaccel.models import (
    PRESETS,
    ExitConfig,
    MoEConfig,
    ShiftAddConfig,
    ViTConfig,
    build_model,
    count_macs,
    count_params,
    get_config,
)


def _numel(cfg: ViTConfig) -> int:
    # the ImageNet-size presets are built without storage; small ones for real
    with torch.device("meta" if cfg.embed_dim >= 192 else "cpu"):
        model = build_model(cfg)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(PRESETS))
def test_count_params_matches_built_model(name: str) -> None:
    assert count_params(name) == _numel(PRESETS[name])


@pytest.mark.parametrize(
    "name,millions,gmacs",
    # published: DeiT paper table 1 (params, FLOPs counted as multiply-adds)
    [("deit-tiny", 5.7, 1.3), ("deit-small", 22.1, 4.6), ("deit-base", 86.6, 17.6),
     ("vit-tiny", 5.7, 1.3)],
)
def test_published_sizes(name: str, millions: float, gmacs: float) -> None:
    assert round(count_params(name) / 1e6, 1) == millions
    assert round(count_macs(name) / 1e9, 1) == gmacs


def test_deit_tiny_macs_by_hand() -> None:
    t, d = 197, 192
    per_block = t * 4 * d * d + 2 * t * t * d + 2 * t * d * 768
    assert count_macs("deit-tiny") == 196 * 768 * d + 12 * per_block + d * 1000


def test_option_combinations_count_params() -> None:
    base = PRESETS["digits-dense"]
    for changes in (
        {"exits": ExitConfig(blocks=(0, 2), head="local")},
        {"exits": ExitConfig(blocks=(1,), head="global", rule="entropy", threshold=0.5)},
        {"moe": MoEConfig(3, 16, 1, 3, (0, 1), gate_bias=False), "qkv_bias": False},
        {"class_token": False, "final_norm": False},
        {"distilled": True},
    ):
        cfg = dataclasses.replace(base, **changes)
        assert count_params(cfg) == _numel(cfg), changes


def test_edge_moe_preset() -> None:
    cfg = PRESETS["edge-moe"]
    assert (cfg.in_chans, *cfg.img_size) == (3, 128, 256)
    assert cfg.num_tokens == 129 and cfg.embed_dim == 192 and cfg.num_classes == 0
    assert cfg.moe == MoEConfig(16, 384, 2, 2, (1, 3, 5, 7, 9, 11), True)


def test_config_validation() -> None:
    base = PRESETS["digits-dense"]
    with pytest.raises(UsageError, match="num_heads"):
        dataclasses.replace(base, embed_dim=30, num_heads=4)
    with pytest.raises(UsageError, match="img_size"):
        dataclasses.replace(base, img_size=(8, 10))
    with pytest.raises(UsageError, match="mean"):
        dataclasses.replace(base, mean=(0.5, 0.5, 0.5))
    with pytest.raises(UsageError, match="moe.blocks"):
        dataclasses.replace(base, moe=MoEConfig(2, 8, 1, 1, (4,)))
    with pytest.raises(UsageError, match="exits.blocks"):
        dataclasses.replace(base, exits=ExitConfig(blocks=(3,)))
    with pytest.raises(UsageError, match="top_k"):
        MoEConfig(2, 8, 3, 1, (0,))
    with pytest.raises(UsageError, match="p_min"):
        ShiftAddConfig(p_min=0, p_max=-2)
    with pytest.raises(UsageError, match="exits.rule"):
        ExitConfig(blocks=(0,), rule="confidence")


def _write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_full_model(tmp_path: Path) -> None:
    path = _write(tmp_path, """
name: my-vit
img_size: [32, 64]
patch_size: 8
in_chans: 3
embed_dim: 48
depth: 3
num_heads: 4
mlp_ratio: 2.5
num_classes: 7
norm_eps: 1.0e-5
mean: [0.5, 0.5, 0.5]
std: [0.25, 0.25, 0.25]
moe: {num_experts: 4, expert_hidden: 32, top_k: 2, num_tasks: 2, blocks: [1], gate_bias: false}
exits: {blocks: [0, 1], head: global, rule: entropy, threshold: 0.3}
shiftadd: {p_min: -6, p_max: -1, layers: mlp}
""")
    cfg = get_config(path)
    assert cfg.img_size == (32, 64) and cfg.mlp_hidden == 120 and cfg.num_tokens == 33
    assert cfg.moe == MoEConfig(4, 32, 2, 2, (1,), False)
    assert cfg.exits == ExitConfig((0, 1), "global", "entropy", 0.3)
    assert cfg.shiftadd == ShiftAddConfig(-6, -1, "mlp")
    model = build_model(str(path))
    logits, index = model.forward_exits(torch.rand(2, 3, 32, 64), task=1)
    assert logits.shape == (2, 7) and index.shape == (2,)


def test_yaml_base_preset(tmp_path: Path) -> None:
    cfg = get_config(_write(tmp_path, "base: deit-tiny\nnum_classes: 10\nimg_size: 96\n"))
    assert cfg == dataclasses.replace(
        PRESETS["deit-tiny"], name="m", num_classes=10, img_size=(96, 96)
    )


@pytest.mark.parametrize(
    "text,pattern",
    [
        ("base: deit-tiny\nembed_dims: 3\n", r"unknown key 'embed_dims'"),
        ("base: deit-tiny\ndepth: twelve\n", r"key 'depth': expected an integer"),
        ("base: deit-tiny\nqkv_bias: 1\n", r"key 'qkv_bias': expected true or false"),
        ("base: deit-tiny\nimg_size: [1, 2, 3]\n", r"key 'img_size'"),
        ("base: deit-tiny\nmoe: {num_experts: 4, top_k: 2}\n", r"section 'moe'"),
        ("base: deit-tiny\nmoe: {num_experts: 4, topk: 2}\n", r"unknown key 'moe.topk'"),
        ("base: deit-tiny\nexits: {blocks: 3}\n", r"key 'exits.blocks': expected a list"),
        ("base: nope\n", r"unknown preset 'nope'"),
        ("depth: 2\n", r"missing required keys"),
        ("- 1\n- 2\n", r"expected a mapping"),
        ("depth: [1,\n", r"not valid YAML"),
        ("base: deit-tiny\nnum_heads: 5\n", r"num_heads"),
        ("base: deit-tiny\nmlp_ratio: 4\nmlp_hidden: 9\n", r"not both"),
    ],
)
def test_yaml_errors_name_file_and_key(tmp_path: Path, text: str, pattern: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(UsageError, match=pattern) as info:
        get_config(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_unknown_model_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown model 'deit-huge'"):
        get_config("deit-huge")
    with pytest.raises(UsageError, match="not found"):
        get_config(tmp_path / "absent.yaml")
