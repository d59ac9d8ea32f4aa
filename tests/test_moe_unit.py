"""The MoE unit: routing rule, patch reordering vs a dense masked oracle, float reference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.fixed import FixedType
from vitaccel.ir import OPS
from vitaccel.ir._build import build_graph
from vitaccel.models import MoEConfig, ViTConfig, build_model
from vitaccel.sim import REFERENCE, SIM, SimContext, simulate
from vitaccel.units import moe

CFG = ViTConfig(
    name="moe-test", img_size=(8, 8), patch_size=4, in_chans=1, embed_dim=8, depth=2,
    num_heads=2, mlp_hidden=12, num_classes=3, mean=(0.5,), std=(1.0,),
    moe=MoEConfig(num_experts=4, expert_hidden=6, top_k=2, num_tasks=2, blocks=(1,)),
)


def random_model(cfg: ViTConfig = CFG, seed: int = 0, scale: float = 0.12):
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * scale)
    return model.eval()


_GRAPHS: dict = {}


def _shared_graph():
    if "g" not in _GRAPHS:
        _GRAPHS["g"] = build_graph(random_model(), "edge-moe")
    return _GRAPHS["g"]


@pytest.fixture(scope="module")
def graph():
    return _shared_graph()


def images(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 1, 8, 8)) / 256.0


def test_node_structure(graph):
    node = graph["blocks.1.mlp"]
    assert node.op == "moe"
    assert node.inputs == ("blocks.1.norm2", "blocks.1.attn.proj")
    for key in OPS["moe"].attrs:
        node.attr(key)
    p = node.params
    assert p["gate_weight"].shape == (2, 4, 8) and p["gate_bias"].shape == (2, 4)
    assert p["fc1_weight"].shape == (4, 6, 8) and p["fc1_bias"].shape == (4, 6)
    assert p["fc2_weight"].shape == (4, 8, 6) and p["fc2_bias"].shape == (4, 8)
    fm = FixedType.parse("ap_fixed<32,10>")
    assert node.attrs["scaled_t"] == fm and node.attrs["combine_t"] == fm
    assert node.attrs["top_k"] == 2 and node.attrs["select"] == "score"
    assert graph["blocks.0.mlp.fc2"].op == "linear"


def _route_node(graph, select: str):
    node = graph["blocks.1.mlp"]
    return dataclasses.replace(node, attrs={**node.attrs, "select": select})


@pytest.mark.parametrize("select", ["score", "prob"])
def test_top_k_ties_go_to_lower_index(graph, select):
    node = _route_node(graph, select)
    acc_t = node.attrs["acc_t"]
    s = acc_t.quantize(np.array([
        [0.5, 2.0, 2.0, 1.0],    # tie for first place: 1 before 2
        [3.0, -1.0, 3.0, 3.0],   # three-way tie: 0, 2
        [0.0, 0.0, 0.0, 0.0],    # all equal: 0, 1
        [-4.0, 1.0, -2.0, 1.5],  # no tie: 3, 1
    ]))
    experts, probs = moe.route(s, node, {})
    np.testing.assert_array_equal(experts, [[1, 2], [0, 2], [0, 1], [3, 1]])
    assert np.all(probs[:, 0] >= probs[:, 1])


def test_probability_ties_with_distinct_scores(graph):
    """Scores closer than the probability LSB: 'prob' picks the lower index, 'score' the larger
    score (Edge-MoE compares scores); the selected probabilities are the same codes."""
    acc_t = graph["blocks.1.mlp"].attrs["acc_t"]
    s = np.array([[acc_t.quantize(1.0), acc_t.quantize(-3.0), acc_t.quantize(1.0) + 1,
                   acc_t.quantize(-5.0)]])
    by_score, p_score = moe.route(s, _route_node(graph, "score"), {})
    by_prob, p_prob = moe.route(s, _route_node(graph, "prob"), {})
    assert p_prob[0, 0] == p_prob[0, 1]
    np.testing.assert_array_equal(by_score, [[2, 0]])
    np.testing.assert_array_equal(by_prob, [[0, 2]])
    np.testing.assert_array_equal(p_score, p_prob)


def dense_masked(node, x, x_t, res, res_t, task):
    """Oracle: every expert on every token, then a masked, element-by-element combine."""
    b, t, d = x.shape
    rows = x.reshape(-1, d)
    a = node.attrs
    experts, probs = moe.route(moe.gate_scores(rows, x_t, node, task, {}), node, {})
    ys = [moe._expert(rows, x_t, node, e, {}) for e in range(a["num_experts"])]
    prob_t = a["softmax"].out_t
    out = np.zeros(rows.shape, dtype=np.int64)
    for p in range(rows.shape[0]):
        for e in range(a["num_experts"]):
            slots = np.nonzero(experts[p] == e)[0]
            if slots.size == 0:
                continue
            score = int(probs[p, slots[0]])
            for j in range(d):
                exact = (int(ys[e][p, j]) * score,
                         FixedType(a["acc_t"].width + prob_t.width,
                                   a["acc_t"].int_bits + prob_t.int_bits))
                scaled = int(a["scaled_t"].cast(np.array(exact[0]), exact[1]))
                fs, fc = a["scaled_t"].frac_bits, a["combine_t"].frac_bits
                f = max(fs, fc)
                total = (int(out[p, j]) << (f - fc)) + (scaled << (f - fs))
                wide = FixedType(64, 64 - f)
                out[p, j] = int(a["combine_t"].cast(np.array(total), wide))
    y = node.fmt.cast(out, a["combine_t"])
    f = max(node.fmt.frac_bits, res_t.frac_bits)
    total = (y << (f - node.fmt.frac_bits)) + (res.reshape(-1, d) << (f - res_t.frac_bits))
    return node.fmt.cast(total, FixedType(64, 64 - f)).reshape(b, t, d)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), task=st.integers(0, 1), select=st.sampled_from(moe.SELECT_RULES))
def test_gather_scatter_equals_dense_masked(seed, task, select):
    node = _route_node(_shared_graph(), select)
    rng = np.random.default_rng(seed)
    x_t = FixedType.parse("ap_fixed<32,10>")
    x = x_t.quantize(rng.normal(0, 1.5, size=(2, 5, 8)))
    res = x_t.quantize(rng.normal(0, 1.5, size=(2, 5, 8)))
    ctx = SimContext(task=task)
    got = SIM["moe"](node, [x, res], [x_t, x_t], ctx)
    np.testing.assert_array_equal(got, dense_masked(node, x, x_t, res, x_t, task))
    load = ctx.reports["expert_load"][node.name]
    assert load.shape == (2, 4) and np.all(load.sum(axis=1) == 5 * 2)
    np.testing.assert_array_equal(ctx.reports["active_experts"][node.name], load > 0)


def test_saturating_combine_follows_expert_order(graph):
    """With a saturating, coarse combine format the expert order changes bits; the unit adds
    in ascending expert order (the oracle does the same)."""
    node = graph["blocks.1.mlp"]
    sat = FixedType.parse("ap_fixed<6,-2,AP_TRN,AP_SAT>")
    node = dataclasses.replace(node, attrs={**node.attrs, "combine_t": sat, "scaled_t": sat})
    x_t = FixedType.parse("ap_fixed<32,10>")
    x = x_t.quantize(np.random.default_rng(3).normal(0, 3.0, size=(1, 6, 8)))
    res = np.zeros_like(x)
    ctx = SimContext()
    got = SIM["moe"](node, [x, res], [x_t, x_t], ctx)
    np.testing.assert_array_equal(got, dense_masked(node, x, x_t, res, x_t, 0))
    assert ctx.overflow[node.name].get("moe.accum", 0) + ctx.overflow[node.name].get(
        "moe.scaled", 0) > 0


@pytest.mark.parametrize("task", [0, 1])
def test_float_reference_equals_pytorch_moe(graph, task):
    model = random_model().double()
    mlp = model.blocks[1].mlp
    rng = np.random.default_rng(task)
    h = rng.normal(0, 1.0, size=(3, 5, 8))
    res = rng.normal(0, 1.0, size=(3, 5, 8))
    got = REFERENCE["moe"](graph["blocks.1.mlp"], [h, res], task)
    with torch.no_grad():
        want = (mlp(torch.from_numpy(h), task) + torch.from_numpy(res)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_per_image_queues_equal_batched_and_reports(graph):
    x = images(5)
    batched = simulate(graph, x, task=1)
    for i in range(5):
        one = simulate(graph, x[i:i + 1], task=1)
        np.testing.assert_array_equal(one.outputs["head"], batched.outputs["head"][i:i + 1])
        np.testing.assert_array_equal(one.reports["expert_load"]["blocks.1.mlp"],
                                      batched.reports["expert_load"]["blocks.1.mlp"][i:i + 1])
    load = batched.reports["expert_load"]["blocks.1.mlp"]
    assert load.shape == (5, 4) and np.all(load.sum(axis=1) == CFG.num_tokens * 2)
    other = simulate(graph, x, task=0).reports["expert_load"]["blocks.1.mlp"]
    assert not np.array_equal(other, load)  # each task has its own gate


def test_simulation_tracks_float_model(graph):
    x = images(6)
    sim = simulate(graph, x).output
    with torch.no_grad():
        ref = random_model().double()(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(sim - ref)) < 2e-3 * max(1.0, np.max(np.abs(ref)))
