"""Early-exit heads: graph structure, float equivalence, fixed-point decision, grid conv."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.ir import OPS
from vitaccel.ir._build import build_graph
from vitaccel.models import ExitConfig, ViTConfig, build_model
from vitaccel.models._exits import exit_score
from vitaccel.sim import SIM, SimContext, run_reference, simulate
from vitaccel.units import exits

BASE = ViTConfig(
    name="exit-test", img_size=(8, 8), patch_size=2, in_chans=1, embed_dim=8, depth=3,
    num_heads=2, mlp_hidden=12, num_classes=4, mean=(0.5,), std=(1.0,),
)


def cfg_for(head: str = "linear", rule: str = "max_prob", threshold: float = 0.5,
            **changes) -> ViTConfig:
    return dataclasses.replace(BASE, exits=ExitConfig(blocks=(0, 1), head=head, rule=rule,
                                                      threshold=threshold), **changes)


def random_model(cfg: ViTConfig, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.15)
        for ex in model.exits:  # confident exit heads, so that decisions vary
            ex.head.weight.mul_(8.0)
    return model.eval()


def images(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 1, 8, 8)) / 256.0


@pytest.mark.parametrize("head", ["linear", "local", "global"])
def test_structure_and_float_reference_equals_pytorch(head):
    cfg = cfg_for(head)
    model = random_model(cfg)
    graph = build_graph(model, "edge-moe")
    assert graph.outputs == ("head", "exits.0", "exits.1")
    for node in graph:
        for key in OPS[node.op].attrs:
            node.attr(key)
        assert set(OPS[node.op].params) <= set(node.params)
    names = [n.name for n in graph]
    assert names.index("exits.0") < names.index("blocks.1.norm1")
    assert graph["exits.1"].attrs["after_block"] == 1
    x = images(3)
    ref = run_reference(graph, x)
    with torch.no_grad():
        outs = model.double().forward_all_exits(torch.from_numpy(x))
    for name, want in zip(("exits.0", "exits.1", "head"), outs, strict=True):
        np.testing.assert_allclose(ref[name], want.numpy(), rtol=1e-9, atol=1e-9)


@pytest.fixture(scope="module")
def linear_graph():
    return build_graph(random_model(cfg_for("linear")), "edge-moe")


@pytest.fixture(scope="module")
def full_run(linear_graph):
    return simulate(linear_graph, images(24), early_exit=False)


def _thresholds(full_run) -> list[float]:
    """Thresholds that split the images between exiting and staying (an image stays when
    both exit scores are below the threshold)."""
    node = full_run.graph["exits.0"]
    fmt = node.params["threshold"].fmt
    best = np.max([fmt.to_float(v) for v in full_run.reports["exit_score"].values()], axis=0)
    return [float(q) for q in np.quantile(best, [0.25, 0.5, 0.75])]


def test_early_exit_never_changes_logits_of_images_that_stay(linear_graph, full_run):
    x = images(24)
    for t in _thresholds(full_run):
        g = exits.with_threshold(linear_graph, t)
        run = simulate(g, x, batch_size=7)
        stay = run.exit_index == 2
        assert 0 < stay.sum() < len(stay)
        np.testing.assert_array_equal(run.outputs["head"][stay], full_run.outputs["head"][stay])
        for j in (0, 1):
            took = run.exit_index == j
            np.testing.assert_array_equal(run.outputs["head"][took],
                                          full_run.outputs[f"exits.{j}"][took])
        # images that left were not computed by the later blocks
        left = int((run.exit_index < 2).sum())
        assert run.skipped["blocks.2.norm1"] == left
        assert run.skipped["head"] == left


def test_sweep_is_bit_identical_to_runs_per_threshold(linear_graph, full_run):
    x, y = images(24), np.arange(24) % 4
    ts = _thresholds(full_run)
    sweep = exits.exit_sweep(linear_graph, x, y, ts)
    for t, row in zip(ts, sweep, strict=True):
        run = simulate(exits.with_threshold(linear_graph, t), x)
        index, logits = exits.apply_threshold(full_run, t)
        np.testing.assert_array_equal(index, run.exit_index)
        np.testing.assert_array_equal(logits, run.outputs["head"])
        assert exits.exit_summary(run, y) == row
        skipped = sum(run.skipped[f"blocks.{i}.norm1"] for i in range(3))
        assert row.blocks_total - row.blocks_computed == skipped
        assert sum(row.histogram) == 24
    assert sweep[0].blocks_saved >= sweep[-1].blocks_saved  # max_prob: higher = stricter


def test_summary_counts_and_accuracy(full_run):
    run = full_run
    t = _thresholds(run)[1]
    index, logits = exits.apply_threshold(run, t)
    y = np.argmax(logits, axis=-1)
    y[:3] = (y[:3] + 1) % 4  # three wrong answers
    decided = dataclasses.replace(run, exit_index=index, outputs={**run.outputs, "head": logits})
    s = exits.exit_summary(decided, y)
    assert s.histogram == tuple(int((index == j).sum()) for j in range(3))
    assert s.accuracy == pytest.approx(21 / 24)
    assert s.blocks_computed == int(sum(np.array([1, 2, 3])[index]))
    assert "accuracy" in s.table() and s.to_dict()["blocks_saved"] == s.blocks_saved


def test_bad_threshold_and_labels(linear_graph, full_run):
    with pytest.raises(UsageError, match="threshold"):
        exits.with_threshold(linear_graph, 1.5)
    with pytest.raises(UsageError, match="labels"):
        exits.exit_summary(full_run, np.zeros(3, dtype=int))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), spread=st.floats(0.0, 6.0))
def test_decision_scores_track_float(seed, spread):
    graph = _decision_graphs()
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, spread, size=(16, 4)) if spread else np.zeros((16, 4))
    for rule, g in graph.items():
        node = g["exits.0"]
        codes = node.fmt.quantize(logits)
        score = exits.decision_score(codes, node.fmt, node)
        dec_t = node.params["threshold"].fmt
        want = exit_score(torch.from_numpy(node.fmt.to_float(codes)), rule).numpy()
        # softmax ROMs: ~1e-4 relative; the entropy adds the ln ROM and C+1 truncations
        np.testing.assert_allclose(dec_t.to_float(score), want, atol=2e-3)
        if not spread:
            assert abs(dec_t.to_float(score[0]) - (np.log(4) if rule == "entropy" else 0.25)) \
                < 1e-3


_DECISION: dict = {}


def _decision_graphs():
    if not _DECISION:
        for rule, t in (("max_prob", 0.5), ("entropy", 0.7)):
            _DECISION[rule] = build_graph(random_model(cfg_for(rule=rule, threshold=t)),
                                          "edge-moe")
    return _DECISION


def test_entropy_rule_exits_on_low_entropy():
    g = _decision_graphs()["entropy"]
    node = g["exits.0"]
    sure = node.fmt.quantize(np.array([[8.0, 0.0, 0.0, 0.0], [0.1, 0.0, 0.0, 0.0]]))
    ctx = SimContext()
    score = exits.decision_score(sure, node.fmt, node)
    assert exits.fires(score, "entropy", int(node.params["threshold"].raw)).tolist() == \
        [True, False]
    x = node.fmt.quantize(np.zeros((2, 5, 8)))
    SIM["exit_head"](node, [x, ], [node.fmt], ctx)
    assert ctx.stop is not None and ctx.stop.shape == (2,)
    assert set(ctx.reports) == {"exit_score", "exit_fire"}


def _oracle_depthwise(node, grid, g_t):
    """Scalar loop over pixels/taps with zero padding taps included."""
    w, b = node.params["weight"], node.params["bias"]
    acc_t, product_t = node.attrs["acc_t"], node.attrs["product_t"]
    bsz, gh, gw, d = grid.shape
    out = np.zeros(grid.shape, dtype=np.int64)
    pf = product_t.frac_bits
    for n in range(bsz):
        for y in range(gh):
            for x in range(gw):
                for c in range(d):
                    acc = int(acc_t.cast(np.array(b.raw[c]), b.fmt))
                    for ky in range(3):
                        for kx in range(3):
                            yy, xx = y + ky - 1, x + kx - 1
                            v = int(grid[n, yy, xx, c]) if 0 <= yy < gh and 0 <= xx < gw else 0
                            prod = v * int(w.raw[c, ky, kx])
                            pt = FixedType(g_t.width + w.fmt.width, g_t.int_bits + w.fmt.int_bits)
                            p = int(product_t.cast(np.array(prod), pt))
                            f = max(acc_t.frac_bits, pf)
                            total = (acc << (f - acc_t.frac_bits)) + (p << (f - pf))
                            acc = int(acc_t.cast(np.array(total), FixedType(64, 64 - f)))
                    out[n, y, x, c] = acc
    return out


def test_depthwise_grid_conv_equals_scalar_oracle():
    cfg = cfg_for("local")
    graph = build_graph(random_model(cfg), "edge-moe")
    node = graph["exits.0.dw"]
    sat = FixedType.parse("ap_fixed<14,2,AP_RND,AP_SAT>")
    node = dataclasses.replace(node, attrs={**node.attrs, "acc_t": sat, "gelu": None})
    g_t = FixedType.parse("ap_fixed<32,10>")
    rng = np.random.default_rng(5)
    x = g_t.quantize(rng.normal(0, 3.0, size=(2, cfg.num_tokens, 8)))
    out = exits.grid_simulate(node, [x], [g_t], {})
    np.testing.assert_array_equal(out[:, 0], x[:, 0])  # class token passes through
    got = node.fmt.cast(out[:, 1:], node.fmt)
    want = node.fmt.cast(_oracle_depthwise(node, x[:, 1:].reshape(2, 4, 4, 8), g_t)
                         .reshape(2, 16, 8), sat)
    np.testing.assert_array_equal(got, want)
