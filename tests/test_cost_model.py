"""Whole-model behaviour of the cost model on a small dense graph (digits-sized ViT)."""

from __future__ import annotations

import dataclasses
import json
import math
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.cost import COST, CostReport, estimate
from vitaccel.errors import UsageError
from vitaccel.hw import load_hw_config, with_knob
from vitaccel.ir import OPS, Graph, Node

HW = load_hw_config("kv260_default")


@pytest.fixture(scope="module")
def graph():
    torch = pytest.importorskip("torch")
    from vitaccel.ir._build import Numerics, build_graph
    from vitaccel.models import build_model, get_config

    torch.manual_seed(0)
    model = build_model(get_config("digits-dense")).eval()
    calibration = np.random.default_rng(0).random((4, 1, 8, 8))
    return build_graph(model, HW.precision, numerics=Numerics.from_hw(HW),
                       calibration=calibration)


def _structural(report: CostReport) -> int:
    return sum(c.cycles for c in report.nodes)


def test_every_op_has_a_cost_function():
    missing = sorted(set(OPS) - set(COST))
    assert not missing, f"ops without a cost function: {missing}"


def test_unknown_op_is_an_error_not_zero(graph):
    odd = Node("mystery", "mystery_op", (graph.nodes[-1].name,), (1,), graph.nodes[-1].fmt)
    g = Graph(graph.name, graph.input_shape, graph.input_fmt, graph.nodes + (odd,),
              ("mystery",), graph.model, graph.precision)
    with pytest.raises(UsageError, match="no cost function for op 'mystery_op'"):
        estimate(g, HW)


def test_no_node_is_free(graph):
    r = estimate(graph, HW)
    assert [c.name for c in r.nodes] == [n.name for n in graph]
    for c in r.nodes:
        assert c.cycles > 0 and c.latency_cycles >= c.cycles, c.name
        assert c.latency_cycles >= c.memory_cycles and c.macs > 0, c.name
        assert c.energy_pj > 0 and c.bound in ("compute", "memory"), c.name
        assert sum(cyc for _, cyc in c.phases) == c.cycles, c.name
    assert r.total_cycles == sum(c.latency_cycles for c in r.nodes)
    assert r.latency_ms == pytest.approx(r.total_cycles / (HW.clock_mhz * 1e3))


def test_units_are_shared_not_summed(graph):
    r = estimate(graph, HW)
    linear = [c for c in r.nodes if c.unit == "linear_engine"]
    assert {c.op for c in linear} == {"patch_embed", "linear", "head"}
    engine = r.units["linear_engine"]
    for key in ("dsp", "bram18", "lut"):
        values = [getattr(c.resources, key) for c in linear]
        assert getattr(engine, key) == max(values)
    assert engine.dsp < sum(c.resources.dsp for c in linear)
    total = r.storage + r.interface
    for res in r.units.values():
        total = total + res
    assert r.resources == total


_PARALLEL = st.sampled_from(["linear.tile_in", "linear.tile_out",
                             "attention.parallel_queries", "attention.head_dim_lanes"])


@settings(max_examples=30, deadline=None)
@given(knob=_PARALLEL, lo=st.integers(1, 32), extra=st.integers(0, 32),
       order=st.sampled_from(["standard", "reordered"]))
def test_more_parallelism_never_adds_compute_cycles(graph, knob, lo, extra, order):
    base = with_knob(HW, "attention.order", order)
    small = estimate(graph, with_knob(base, knob, lo))
    large = estimate(graph, with_knob(base, knob, lo + extra))
    assert _structural(large) <= _structural(small)
    for a, b in zip(small.nodes, large.nodes, strict=True):
        assert b.cycles <= a.cycles, (knob, a.name)


@settings(max_examples=30, deadline=None)
@given(
    knob=st.sampled_from(["board.dram_bandwidth_gbps", "memory.dram_port_width_bits",
                          "memory.num_dram_ports"]),
    pick=st.tuples(st.integers(0, 5), st.integers(0, 5)),
    buffering=st.sampled_from(["single", "pingpong", "resident"]),
)
def test_less_bandwidth_never_reduces_latency(graph, knob, pick, buffering):
    values = {
        "board.dram_bandwidth_gbps": [0.5, 1.0, 2.0, 4.0, 9.6, 19.2],
        "memory.dram_port_width_bits": [32, 64, 128, 256, 512, 1024],
        "memory.num_dram_ports": [1, 2, 3, 4, 6, 8],
    }[knob]
    lo, hi = sorted(values[i] for i in pick)
    base = with_knob(HW, "linear.weight_buffering", buffering)
    slow = estimate(graph, with_knob(base, knob, lo))
    fast = estimate(graph, with_knob(base, knob, hi))
    assert slow.total_cycles >= fast.total_cycles
    for a, b in zip(slow.nodes, fast.nodes, strict=True):
        assert a.latency_cycles >= b.latency_cycles and a.memory_cycles >= b.memory_cycles


def test_buffering_orders_latency_and_moves_weights(graph):
    r = {b: estimate(graph, with_knob(HW, "linear.weight_buffering", b))
         for b in ("single", "pingpong", "resident")}
    assert r["resident"].total_cycles <= r["pingpong"].total_cycles <= r["single"].total_cycles
    assert all(c.weight_bytes == 0 for c in r["resident"].nodes)
    assert r["resident"].setup_cycles > 0 and r["pingpong"].setup_cycles == 0
    assert r["resident"].storage.bram18 + r["resident"].storage.lut > 0
    # Ping-pong holds two weight buffers where single holds one.
    ping, single = r["pingpong"].units["linear_engine"], r["single"].units["linear_engine"]
    assert ping.bram18 + ping.lut > single.bram18 + single.lut


def test_fit_warning_in_report_and_table(graph):
    tiny = with_knob(HW, "board.dsp", 16)
    r = estimate(graph, tiny)
    assert not r.fits
    assert r.utilisation["dsp"] > 1.0
    assert any("dsp" in w and "DOES NOT FIT" in w for w in r.warnings)
    assert "WARNING: DOES NOT FIT: dsp" in r.table()
    ok = estimate(graph, HW)
    assert ok.fits and not ok.warnings and "WARNING" not in ok.table()


def test_power_and_energy_model(graph):
    r = estimate(graph, HW)
    seconds = r.expected_cycles / (HW.clock_mhz * 1e6)
    dynamic_mj = sum(c.energy_pj for c in r.nodes) * 1e-9
    assert r.energy_mj == pytest.approx(HW.board.static_power_w * seconds * 1e3 + dynamic_mj)
    assert r.power_w == pytest.approx(r.energy_mj * 1e-3 / seconds)
    dearer = estimate(graph, with_knob(HW, "energy.dram_pj_per_byte", 1000.0))
    dram_bytes = sum(c.dram_bytes for c in r.nodes)
    expected_gain = dram_bytes * (1000.0 - HW.energy_model.dram_pj_per_byte) * 1e-9
    assert dearer.energy_mj - r.energy_mj == pytest.approx(expected_gain, rel=1e-9)


def test_early_exit_expected_latency(graph):
    mid = "blocks.1.mlp.fc2"
    g = dataclasses.replace(graph, outputs=(graph.outputs[0], mid))
    full = estimate(g, HW)
    upto = sum(c.latency_cycles for c in full.nodes[: [n.name for n in g].index(mid) + 1])
    r = estimate(g, HW, exit_fractions={mid: 0.25})
    assert r.expected_cycles == pytest.approx(0.25 * upto + 0.75 * full.total_cycles)
    assert r.total_cycles == full.total_cycles
    assert r.exit_fractions == {mid: 0.25, graph.outputs[0]: 0.75}
    assert r.energy_mj < full.energy_mj
    summary = types.SimpleNamespace(exits=(mid, graph.outputs[0]), histogram=(1, 3))
    assert estimate(g, HW, exit_fractions=summary).expected_cycles == r.expected_cycles
    with pytest.raises(UsageError, match="not an output"):
        estimate(g, HW, exit_fractions={"blocks.0.norm1": 0.5})
    with pytest.raises(UsageError, match=r"sum to 1\.5"):
        estimate(g, HW, exit_fractions={mid: 0.75, graph.outputs[0]: 0.75})
    with pytest.raises(UsageError, match=r"fraction in \[0, 1\]"):
        estimate(g, HW, exit_fractions={mid: -0.1})


def test_expert_load_names_must_be_moe_nodes(graph):
    with pytest.raises(UsageError, match="not a MoE node"):
        estimate(graph, HW, expert_load={"blocks.0.mlp.fc1": [1, 2]})


def _with_two_pass_softmax(graph: Graph) -> Graph:
    from vitaccel.units.softmax import TwoPassSoftmax

    nodes = []
    for node in graph:
        if node.op == "attention":
            sm = node.attrs["softmax"]
            two = TwoPassSoftmax(**{f.name: getattr(sm, f.name)
                                    for f in dataclasses.fields(sm) if f.init})
            node = Node(node.name, node.op, node.inputs, node.shape, node.fmt,
                        {**node.attrs, "softmax": two}, node.params)
        nodes.append(node)
    return graph.replace_nodes(tuple(nodes))


def test_two_pass_softmax_adds_a_pass(graph):
    one = estimate(graph, HW).node("blocks.0.attn")
    two = estimate(_with_two_pass_softmax(graph), HW).node("blocks.0.attn")
    n = graph.spec("blocks.0.attn")[0][0]
    heads, lanes = graph["blocks.0.attn"].attrs["num_heads"], HW.attention.head_dim_lanes
    assert dict(two.phases)["softmax"] == math.ceil(n * n * heads / lanes)
    assert "softmax" not in dict(one.phases)
    assert two.cycles == one.cycles + dict(two.phases)["softmax"]


def test_standard_order_pays_for_query_loading(graph):
    reordered = estimate(graph, HW).node("blocks.0.attn")
    standard = estimate(graph, with_knob(HW, "attention.order", "standard")).node("blocks.0.attn")
    (n, d), p = graph.spec("blocks.0.attn")[0], HW.attention.parallel_queries
    blocks = math.ceil(d / HW.attention.head_dim_lanes)
    assert dict(reordered.phases)["qk"] == math.ceil((n + p - 1) / p) * n * blocks
    assert dict(standard.phases)["qk"] == math.ceil(n / p) * n * blocks + n * blocks


def test_json_round_trip(graph):
    r = estimate(graph, HW)
    data = json.loads(r.to_json())
    assert data["estimate"] is True and data["total_cycles"] == r.total_cycles
    assert [n["name"] for n in data["nodes"]] == [c.name for c in r.nodes]
    assert data["units"]["linear_engine"]["dsp"] == r.units["linear_engine"].dsp
    assert data["fits"] is True


def test_variant_mismatch_is_a_warning_not_a_fit_failure(graph):
    r = estimate(graph, with_knob(HW, "variants.gelu", "tanh"))
    assert r.fits
    (note,) = r.warnings
    assert "gelu variant(s) delta_table" in note and "'tanh'" in note
    assert note in r.table(layers=False)
    assert estimate(graph, HW).notes == ()
