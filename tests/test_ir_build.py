"""The graph builder: structure, folding, formats, and float equivalence with PyTorch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.ir import OPS, Auto, Precision, get_precision
from vitaccel.ir._build import build_graph
from vitaccel.models import ViTConfig, build_model
from vitaccel.sim import run_reference


def small_cfg(**changes) -> ViTConfig:
    base = ViTConfig(
        name="tiny-test", img_size=(8, 12), patch_size=4, in_chans=3, embed_dim=12, depth=2,
        num_heads=3, mlp_hidden=20, num_classes=5, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25),
    )
    return dataclasses.replace(base, **changes)


def random_model(cfg: ViTConfig, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return model.eval()


def images(cfg: ViTConfig, n: int = 3, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, cfg.in_chans, *cfg.img_size)) / 256.0


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"distilled": True},
        {"class_token": False},
        {"qkv_bias": False, "final_norm": False},
        {"num_classes": 0},
        {"num_heads": 1, "embed_dim": 7, "img_size": (4, 8)},
    ],
    ids=["cls", "distilled", "mean-pool", "no-qkv-bias", "features", "one-head-odd-dim"],
)
def test_float_reference_graph_equals_pytorch(changes):
    cfg = small_cfg(**changes)
    model = random_model(cfg)
    graph = build_graph(model, "edge-moe")
    x = images(cfg)
    ref = run_reference(graph, x)[graph.outputs[0]]
    with torch.no_grad():
        expected = model.double()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ref, expected, rtol=1e-9, atol=1e-9)


def test_graph_structure_and_formats():
    cfg = small_cfg()
    graph = build_graph(random_model(cfg), "edge-moe")
    names = [n.name for n in graph]
    assert names[:3] == ["patch_embed", "pos_embed", "blocks.0.norm1"]
    assert names[-2:] == ["norm", "head"]
    assert {n.op for n in graph} <= set(OPS)
    for node in graph:
        for key in OPS[node.op].attrs:
            node.attr(key)
        assert set(OPS[node.op].params) <= set(node.params)
    qkv = graph["blocks.0.attn.qkv"]
    assert qkv.params["weight"].fmt == FixedType.parse("ap_fixed<16,2>")
    assert qkv.params["bias"].fmt == FixedType.parse("ap_fixed<16,7>")
    assert graph["blocks.0.mlp.fc1"].params["bias"].fmt == FixedType.parse("ap_fixed<16,5>")
    assert graph["blocks.1.mlp.fc2"].attrs["residual"]
    assert graph["blocks.1.mlp.fc2"].inputs == ("blocks.1.mlp.fc1", "blocks.1.attn.proj")
    assert graph.input_fmt == FixedType.parse("ap_ufixed<8,0>")
    w = qkv.params["weight"]
    np.testing.assert_array_equal(w.raw, w.fmt.quantize(w.ref))


def test_query_scale_and_normalisation_are_folded():
    cfg = small_cfg()
    model = random_model(cfg)
    graph = build_graph(model, "edge-moe")
    d, hd = cfg.embed_dim, cfg.head_dim
    w = model.blocks[0].attn.qkv.weight.detach().double().numpy()
    folded = graph["blocks.0.attn.qkv"].params["weight"].ref
    np.testing.assert_allclose(folded[:d], w[:d] * hd**-0.5)
    np.testing.assert_array_equal(folded[d:], w[d:])
    conv_w = model.patch_embed.proj.weight.detach().double().numpy()
    pw = graph["patch_embed"].params["weight"].ref.reshape(conv_w.shape)
    np.testing.assert_allclose(pw * np.asarray(cfg.std)[None, :, None, None], conv_w)


def test_auto_formats_follow_observed_ranges():
    cfg = small_cfg()
    model = random_model(cfg)
    x = images(cfg, 4)
    graph = build_graph(model, "w16a16", calibration=x)
    trace = run_reference(graph, x)
    for node in graph:
        if node.op in ("attention", "layernorm", "linear", "patch_embed"):
            peak = np.max(np.abs(trace[node.name]))
            assert node.fmt.width == 16
            assert node.fmt.max_value >= peak
            narrower = dataclasses.replace(node.fmt, int_bits=node.fmt.int_bits - 1)
            assert narrower.max_value < peak or -narrower.min_value < peak
        for p in node.params.values():
            if p.fmt.width == 16:
                assert -p.fmt.min_value >= np.max(np.abs(p.ref))


def test_auto_activation_needs_calibration():
    cfg = small_cfg()
    with pytest.raises(UsageError, match="calibration images are required"):
        build_graph(random_model(cfg), "w8a8")


def test_auto_choose_is_minimal():
    assert Auto(8).choose(1.0) == FixedType(8, 2)
    assert Auto(8).choose(0.99) == FixedType(8, 1)
    assert Auto(8, signed=False).choose(3.5) == FixedType(8, 2, signed=False)
    assert Auto(16).choose(300.0) == FixedType(16, 10)


def test_precision_yaml_overrides(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "base: edge-moe\nroles:\n  act: ap_fixed<24,8>\n"
        "layers:\n  'blocks.*.mlp.fc1':\n    weight: ap_fixed<8,1>\n"
    )
    prec = get_precision(str(path))
    assert prec.name == "p"
    cfg = small_cfg()
    graph = build_graph(random_model(cfg), prec)
    assert graph["blocks.0.mlp.fc1"].params["weight"].fmt == FixedType(8, 1)
    assert graph["blocks.0.mlp.fc2"].params["weight"].fmt == FixedType(16, 2)
    assert graph["blocks.1.attn"].fmt == FixedType(24, 8)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("base: edge-moe\nroles:\n  actt: ap_fixed<8,3>\n", "roles.actt: unknown role"),
        ("base: edge-moe\nroles:\n  act: ap_fixed<8>\n", "roles.act: "),
        ("base: nope\n", "base: unknown preset 'nope'"),
        ("base: edge-moe\ncolour: red\n", "unknown key 'colour'"),
        ("roles:\n  act: ap_fixed<8,3>\n", "roles: missing"),
        ("base: edge-moe\nlayers:\n  blocks.0.mlp.fc1:\n    wieght: ap_int<8>\n",
         "layers.blocks.0.mlp.fc1.wieght: unknown role"),
    ],
)
def test_precision_yaml_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as info:
        Precision.from_yaml(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_override_matching_no_layer_is_an_error(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("base: edge-moe\nlayers:\n  blocks.9.*:\n    act: ap_fixed<8,3>\n")
    with pytest.raises(UsageError, match="'blocks.9.\\*' matches no layer"):
        build_graph(random_model(small_cfg()), str(path))


def test_unknown_precision_name():
    with pytest.raises(UsageError, match="expected a preset"):
        get_precision("w4a4")
