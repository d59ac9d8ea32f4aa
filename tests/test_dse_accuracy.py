"""Accuracy sweeps: one simulation per quantized graph, reused across tiling; the
accuracy-bits plot draws those graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _dse_cases import ACCURACY_SPACE, EXIT_SPACE, write_space

from vitaccel.dse import run_sweep
from vitaccel.dse._evaluate import _with_attention
from vitaccel.plots import plot_sweep, sweep_figure

N_IMAGES = 12


@pytest.fixture(scope="module")
def acc_sweep(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("acc")
    return run_sweep(write_space(folder, ACCURACY_SPACE), folder / "out", accuracy=N_IMAGES,
                     workers=1, progress=False)


def test_one_simulation_per_quantized_graph(acc_sweep) -> None:
    t = acc_sweep.table
    # act width x P (2 x 2) + the reference design (w16a16, P = 4)
    assert t["numerics"].nunique() == 5 == acc_sweep.simulations
    assert len(t) == 9
    for _, group in t.groupby("numerics"):
        for col in ("accuracy", "sqnr_db", "min_sqnr_db", "top1_agreement"):
            assert group[col].nunique(dropna=False) == 1
    # tiling does not change the numerics key; P and widths do
    assert t.groupby(["attention.parallel_queries", "precision.act.width"])["numerics"] \
        .nunique().max() == 1
    assert t["accuracy"].between(0, 1).all() and t["accuracy_float"].nunique() == 1
    assert "5 bit-exact simulations" in acc_sweep.summary()


def test_accuracy_equals_a_direct_simulation(acc_sweep) -> None:
    from vitaccel.data import load_digits_split
    from vitaccel.hw import load_hw_config, with_knob
    from vitaccel.ir import Auto, get_precision
    from vitaccel.ir._build import Numerics, build_graph
    from vitaccel.models._train import pretrained_digits
    from vitaccel.sim import compare

    row = acc_sweep.table.query("`precision.act.width` == 6 and "
                                "`attention.parallel_queries` == 1").iloc[0]
    hw = with_knob(load_hw_config("kv260_default"), "attention.parallel_queries", 1)
    prec = get_precision("w16a16").with_roles(act=Auto(6))
    x_tr, _, x, y = load_digits_split()
    model = pretrained_digits("dense")
    graph = build_graph(model, prec, numerics=Numerics.from_hw(hw), calibration=x_tr[:256])
    report = compare(graph, x[:N_IMAGES], y[:N_IMAGES])
    assert row["accuracy"] == report.accuracy_sim
    assert row["sqnr_db"] == report.layers[-1].sqnr_db
    # the P = 2 graph derived from it is the graph the builder makes for P = 2
    hw2 = with_knob(hw, "attention.parallel_queries", 2)
    direct = build_graph(model, prec, numerics=Numerics.from_hw(hw2), calibration=x_tr[:256])
    derived = _with_attention(graph, "reordered", 2)
    for a, b in zip(derived.nodes, direct.nodes, strict=True):
        assert (a.name, a.op, a.fmt, a.shape) == (b.name, b.op, b.fmt, b.shape)
        if a.op == "attention":
            assert (a.attrs["order"], a.attrs["parallel_queries"]) == ("reordered", 2)
            assert set(a.attrs) == set(b.attrs)
        for k, p in a.params.items():
            np.testing.assert_array_equal(p.raw, b.params[k].raw)


def test_accuracy_bits_plot_draws_each_graph(acc_sweep, tmp_path: Path) -> None:
    t = acc_sweep.table
    fig = sweep_figure(acc_sweep.out, "accuracy-bits")
    ax = fig.axes[0]
    dots = next(c for c in ax.collections if c.get_gid() == "accuracy:act")
    graphs = t[~t["reference"]].drop_duplicates("numerics")
    want = np.column_stack([graphs["precision.act.width"].to_numpy(float),
                            100 * graphs["accuracy"].to_numpy(float)])
    np.testing.assert_array_equal(dots.get_offsets(), want)
    sqnr = next(c for a in fig.axes for c in a.collections if c.get_gid() == "sqnr:act")
    np.testing.assert_array_equal(sqnr.get_offsets()[:, 1], graphs["sqnr_db"].to_numpy(float))
    assert "bits" in ax.get_xlabel() and "%" in ax.get_ylabel()
    out = plot_sweep(acc_sweep.out, "accuracy-bits", tmp_path / "ab.svg")
    assert out.stat().st_size > 5000


def test_exit_threshold_axis_changes_numerics_and_expected_latency(tmp_path: Path) -> None:
    """A random-weight exit model: a low threshold lets images leave at the first exit."""
    res = run_sweep(write_space(tmp_path, EXIT_SPACE), tmp_path / "out", accuracy=8,
                    workers=1, progress=False)
    t = res.table
    assert res.simulations == t["numerics"].nunique() == 4  # 3 thresholds + reference (0.9)
    assert float(t.loc[t["reference"], "exits.threshold"].iloc[0]) == 0.9
    assert t.groupby("exits.threshold")["numerics"].nunique().max() == 1
    assert (t["cycles"] <= t["total_cycles"]).all()
    low = t[t["exits.threshold"] == 0.1].set_index("linear.tile_in")["cycles"]
    high = t[t["exits.threshold"] == 0.99].set_index("linear.tile_in")["cycles"]
    assert (low < high).all()
