"""The cost model reproduces the cycle structure of the public Edge-MoE code on the ZCU102."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vitaccel.cost import estimate
from vitaccel.hw import load_hw_config, with_knob

N, P, DIM, LANES, TILE = 129, 4, 192, 8, 16


@pytest.fixture(scope="module")
def hw():
    return load_hw_config("zcu102_edge_moe")


@pytest.fixture(scope="module")
def graph(hw):
    torch = pytest.importorskip("torch")
    from vitaccel.ir._build import Numerics, build_graph
    from vitaccel.models import build_model, get_config

    torch.manual_seed(0)
    model = build_model(get_config("edge-moe")).eval()
    return build_graph(model, hw.precision, numerics=Numerics.from_hw(hw))


@pytest.fixture(scope="module")
def report(graph, hw):
    return estimate(graph, hw)


def test_linear_cycles_are_tokens_times_tiles(report):
    per_matrix = N * math.ceil(DIM / TILE) * math.ceil(DIM / TILE)
    assert per_matrix == 18_576
    for i in range(12):
        qkv = report.node(f"blocks.{i}.attn.qkv")
        assert qkv.cycles == 3 * per_matrix == 55_728  # q, k and v fused into one node
        assert qkv.phases == (("mac", 55_728),)
        assert report.node(f"blocks.{i}.attn.proj").cycles == per_matrix
        assert qkv.overhead_cycles > 0  # pipeline depth, kept apart from the structure
        assert qkv.compute_cycles == qkv.cycles + qkv.overhead_cycles


def test_dense_mlp_and_patch_embedding_cycles(report):
    for i in range(0, 12, 2):
        assert report.node(f"blocks.{i}.mlp.fc1").cycles == N * (768 // TILE) * (DIM // TILE)
        assert report.node(f"blocks.{i}.mlp.fc2").cycles == N * (DIM // TILE) * (768 // TILE)
    # 128 patches x 192 outputs x 3*16*16 inputs on the same engine.
    assert report.node("patch_embed").cycles == 128 * 12 * 48


def test_reordered_attention_cycles(report):
    each = math.ceil((N + P - 1) / P) * N * (DIM // LANES)
    assert each == 102_168
    for i in range(12):
        att = report.node(f"blocks.{i}.attn")
        assert dict(att.phases) == {"qk": each, "av": each}  # online softmax: no extra pass
        assert att.cycles == 2 * each


def test_total_is_six_to_seven_million_cycles(report):
    assert 6.0e6 <= report.total_cycles <= 7.0e6
    assert 20.0 <= report.latency_ms <= 23.5
    assert report.expected_cycles == report.total_cycles
    assert report.fits
    assert math.isclose(report.throughput_ips, 1e3 / report.latency_ms)


def test_moe_latency_follows_active_experts(graph, hw, report):
    moe_nodes = [n.name for n in graph if n.op == "moe"]
    assert len(moe_nodes) == 6
    totals = []
    for active in range(2, 17):
        mask = np.arange(16) < active
        r = estimate(graph, hw, expert_load={name: mask for name in moe_nodes})
        totals.append(r.total_cycles)
    assert totals == sorted(totals)
    assert totals[-1] == report.total_cycles  # all 16 active is the default worst case
    assert totals[0] < totals[-1]


def test_explicit_expert_token_counts(graph, hw, report):
    name = next(n.name for n in graph if n.op == "moe")
    counts = np.zeros(16, dtype=np.int64)
    counts[:2] = N  # every token to the same two experts
    one = estimate(graph, hw, expert_load={name: counts}).node(name)
    worst = report.node(name)
    assert dict(one.phases)["experts"] == dict(worst.phases)["experts"]  # same routed rows
    assert one.latency_cycles < worst.latency_cycles  # but 2 weight loads instead of 16
    assert one.weight_bytes < worst.weight_bytes


def test_per_token_expert_loading_costs_more(graph, hw, report):
    name = next(n.name for n in graph if n.op == "moe")
    no_reorder = with_knob(hw, "moe.patch_reordering", False)
    slow = estimate(graph, no_reorder).node(name)
    assert slow.weight_bytes > 10 * report.node(name).weight_bytes
    assert slow.latency_cycles > report.node(name).latency_cycles


def test_expert_load_of_several_images_costs_the_mean(graph, hw):
    name = next(n.name for n in graph if n.op == "moe")
    a = np.full(16, 129 * 2 // 16)
    b = np.zeros(16, dtype=np.int64)
    b[:4] = 129 * 2 // 4
    one = [estimate(graph, hw, expert_load={name: row}).node(name) for row in (a, b)]
    both = estimate(graph, hw, expert_load={name: np.stack([a, b])}).node(name)
    assert both.latency_cycles == round((one[0].latency_cycles + one[1].latency_cycles) / 2)
    assert both.weight_bytes == (one[0].weight_bytes + one[1].weight_bytes) // 2
    from vitaccel.errors import UsageError

    with pytest.raises(UsageError, match="per-expert token counts"):
        estimate(graph, hw, expert_load={name: np.zeros(15, dtype=np.int64)})
    with pytest.raises(UsageError, match=r"must lie in \[0, 129\]"):
        estimate(graph, hw, expert_load={name: np.full(16, 200)})
