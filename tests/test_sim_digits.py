"""End-to-end fidelity on real data: the trained digits model, bit-accurately simulated."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from vitaccel.cli import main
from vitaccel.data import load_digits_split
from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.fixed import _fma_floor as fma_floor
from vitaccel.fixed import _matmul as matmul
from vitaccel.ir import PRECISION_PRESETS, Precision
from vitaccel.ir._build import Numerics, build_graph
from vitaccel.models import build_model
from vitaccel.models._train import pretrained_digits
from vitaccel.sim import compare, simulate
from vitaccel.sim._simulate import CHUNK_BYTES, _last_uses, images_per_chunk


@pytest.fixture(scope="module")
def digits():
    x_train, _, x, y = load_digits_split()
    return pretrained_digits("dense"), x_train[:256], x, y


def test_edge_moe_preset_keeps_top1(digits):
    model, calib, x, y = digits
    graph = build_graph(model, "edge-moe", numerics=Numerics(attention_order="reordered",
                                                             parallel_queries=4))
    report = compare(graph, x, y)
    assert report.top1_agreement >= 0.995
    assert report.accuracy_float >= 0.97
    assert sum(e.overflow for e in report.layers) == 0


def test_w8a8_within_one_point_of_float(digits):
    model, calib, x, y = digits
    report = compare(build_graph(model, "w8a8", calibration=calib), x, y)
    assert report.accuracy_sim >= report.accuracy_float - 0.01


@pytest.mark.parametrize("batch_size", [None, 64])  # the default here: chunks of 64 and 6
def test_batch_size_does_not_change_bits(digits, batch_size):
    model, calib, x, _ = digits
    graph = build_graph(model, "w16a16", calibration=calib)
    a = simulate(graph, x[:70], batch_size=batch_size, keep=True)
    assert_same_run(a, simulate(graph, x[:70], batch_size=5, keep=True), a.tensors)


def test_dead_tensors_are_dropped_after_their_last_reader(digits):
    model, calib, x, _ = digits
    graph = build_graph(model, "w8a8", calibration=calib)
    dead = _last_uses(graph)
    dropped = [t for names in dead.values() for t in names]
    assert len(dropped) == len(set(dropped))
    assert set(dropped) == {t for n in graph for t in n.inputs} - set(graph.outputs)
    for reader, names in dead.items():
        for t in names:
            assert [n.name for n in graph if t in n.inputs][-1] == reader
    assert_same_run(simulate(graph, x[:9]), simulate(graph, x[:9], keep=True), graph.outputs)


def assert_same_run(a, b, names) -> None:
    """Two simulations gave the same codes for ``names`` and the same overflow counts."""
    for name in names:
        np.testing.assert_array_equal(*(r.outputs[name] if name in r.outputs else r.tensors[name]
                                        for r in (a, b)))
    assert a.overflow == b.overflow


def test_default_chunk_keeps_the_largest_tensor_within_the_budget(digits):
    model, calib, _, _ = digits
    graph = build_graph(model, "w8a8", calibration=calib)
    assert images_per_chunk(graph) == 64  # a small model: the cap
    deit = build_graph(build_model("deit-tiny"), "edge-moe")
    largest = 197 * 768 * 8  # the fc1 output of one image, int64
    assert images_per_chunk(deit) == CHUNK_BYTES // largest == 13


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_batch_size_must_be_a_positive_count(digits, bad):
    model, calib, x, _ = digits
    graph = build_graph(model, "w8a8", calibration=calib)
    with pytest.raises(UsageError, match=re.escape(
            f"batch_size: expected a positive number of images, got {bad!r}")):
        simulate(graph, x[:2], batch_size=bad)


def test_overflow_is_reported_where_it_happens(digits):
    model, _, x, _ = digits
    base = PRECISION_PRESETS["edge-moe"]
    narrow = FixedType.parse("ap_fixed<6,0,AP_TRN,AP_SAT>")  # |values| < 0.5
    prec = Precision("narrow-fc1", base.roles, {"blocks.0.mlp.fc1": {"act": narrow}})
    graph = build_graph(model, prec)
    result = simulate(graph, x[:50], keep=True)
    assert result.overflow["blocks.0.mlp.fc1"]["out"] > 0
    assert sum(result.overflow["blocks.0.mlp.fc2"].values()) == 0
    assert np.abs(result.value("blocks.0.mlp.fc1")).max() <= narrow.max_value


def test_simulate_cli_writes_json(tmp_path, capsys, digits):
    out = tmp_path / "report.json"
    code = main(["simulate", "--model", "digits-dense", "--precision", "edge-moe",
                 "--n", "20", "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "top-1 agreement" in text and "blocks.0.attn" in text
    data = json.loads(out.read_text())
    assert data["images"] == 20
    assert [layer["name"] for layer in data["layers"]][:2] == ["patch_embed", "pos_embed"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "/nonexistent/images"], "/nonexistent/images"),
        (["--n", "0"], "--n: expected a positive number"),
        (["--precision", "w3a3"], "--precision 'w3a3'"),
        (["--model", "deit-tiny"], "--data digits: 8x8 single-channel images do not fit"),
    ],
)
def test_simulate_cli_usage_errors(argv, message, capsys):
    code = main(["simulate", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not fma_floor.available(), reason="needs AVX-512F")
@pytest.mark.parametrize("narrow", [False, True])
def test_edge_moe_bits_do_not_depend_on_the_floor_kernel(digits, monkeypatch, narrow):
    """Edge-MoE's truncated products run on the AVX-512 FMA kernel where the host has it,
    else on the int64 kernel: every tensor and overflow count of the simulation is the same
    (with a narrow fc1 output that saturates, too)."""
    model, _, x, _ = digits
    prec = PRECISION_PRESETS["edge-moe"]
    if narrow:
        narrow_t = FixedType.parse("ap_fixed<6,0,AP_TRN,AP_SAT>")
        prec = Precision("narrow-fc1", prec.roles, {"blocks.0.mlp.fc1": {"act": narrow_t}})
    graph = build_graph(model, prec)
    calls = []
    monkeypatch.setattr(matmul, "fma_floor_sum",
                        lambda *a: calls.append(a[0].shape) or fma_floor.fma_floor_sum(*a))
    fast = simulate(graph, x[:60], keep=True)
    assert len(calls) >= len([n for n in graph if n.op in ("linear", "attention")])
    n_fast = len(calls)
    monkeypatch.setattr(matmul, "fma_available", lambda: False)
    slow = simulate(graph, x[:60], keep=True)
    assert len(calls) == n_fast  # the int64 kernel ran the second simulation
    for name in fast.tensors:
        np.testing.assert_array_equal(fast.tensors[name], slow.tensors[name])
    assert fast.overflow == slow.overflow
    assert (fast.overflow["blocks.0.mlp.fc1"]["out"] > 0) == narrow
