"""Plots of a small sweep: every kind renders, and what is drawn is what the table holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _dse_cases import write_space

from vitaccel.dse import Objective, pareto_table, run_sweep
from vitaccel.dse._reload import open_sweep
from vitaccel.errors import UsageError
from vitaccel.hw import load_board
from vitaccel.plots import PLOT_KINDS, plot_sweep, roofline_points, sweep_figure


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plots")
    run_sweep(write_space(folder), folder / "out", workers=1, progress=False)
    return folder / "out"


def _gid(ax, gid: str):
    return next(c for c in ax.collections if c.get_gid() == gid)


def test_pareto_plot_draws_the_table(sweep_dir: Path) -> None:
    table = open_sweep(sweep_dir).table
    fig = sweep_figure(sweep_dir, "pareto")
    ax = fig.axes[0]
    feasible = table[table["feasible"]]
    np.testing.assert_array_equal(_gid(ax, "all").get_offsets(),
                                  feasible[["latency_ms", "dsp"]].to_numpy(float))
    front = pareto_table(table, (Objective("latency_ms", "min"), Objective("dsp", "min")))
    got = _gid(ax, "front").get_offsets()
    assert sorted(map(tuple, got)) == sorted(map(tuple, front[["latency_ms", "dsp"]]
                                                 .to_numpy(float)))
    ref = table[table["reference"]]
    np.testing.assert_array_equal(_gid(ax, "reference").get_offsets(),
                                  ref[["latency_ms", "dsp"]].to_numpy(float))
    limits = [line.get_ydata()[0] for line in ax.get_lines() if "available" in line.get_label()]
    assert limits == [load_board("kv260").dsp]
    texts = [t.get_text() for t in ax.texts if t.get_text() != "base design (kv260_default)"]
    assert len(texts) == len(ax.texts) - 1  # the reference point is named next to its star
    spots = front.groupby(["latency_ms", "dsp"]).size()
    assert len(texts) == len(spots) and all("in" in t for t in texts)
    assert sum(1 + int(t.split("(+")[1].split()[0]) if "(+" in t else 1 for t in texts) \
        == len(front)
    assert "tiny-digits" in ax.get_title() and "kv260" in ax.get_title()
    assert "(ms)" in ax.get_xlabel() and "DSP" in ax.get_ylabel()


def test_pareto_plot_other_metrics_and_errors(sweep_dir: Path) -> None:
    fig = sweep_figure(sweep_dir, "pareto", x="energy_mj", y="lut_util")
    ax = fig.axes[0]
    assert [line.get_ydata()[0] for line in ax.get_lines()
            if "capacity" in line.get_label()] == [1.0]
    with pytest.raises(UsageError, match="'nope'"):
        sweep_figure(sweep_dir, "pareto", x="nope")
    with pytest.raises(UsageError, match="--kind"):
        sweep_figure(sweep_dir, "pie")
    with pytest.raises(UsageError, match=".png, .svg or .pdf"):
        plot_sweep(sweep_dir, "pareto", sweep_dir / "x.jpg")
    with pytest.raises(UsageError, match="no accuracy"):
        sweep_figure(sweep_dir, "accuracy-bits")


def test_breakdown_bars_add_up_to_each_points_latency(sweep_dir: Path) -> None:
    sweep = open_sweep(sweep_dir)
    points = [int(p) for p in sweep.table["point"].iloc[[0, 3]]]
    fig = sweep_figure(sweep_dir, "breakdown", points=points)
    ax = fig.axes[0]
    heights = {}
    memory = 0.0
    for patch in ax.patches:
        gid = patch.get_gid()
        if gid is None:
            continue
        kind, bound, bar = gid.split("|")
        heights[int(bar)] = heights.get(int(bar), 0.0) + patch.get_height()
        memory += patch.get_height() if bound == "memory" else 0.0
    for i, p in enumerate(points):
        row = sweep.row(p)
        assert heights[i] == pytest.approx(row["total_cycles"] / (row["clock_mhz"] * 1e3),
                                           rel=1e-12)
    assert [t.get_text().split()[0] for t in ax.get_xticklabels()] == [f"#{p}" for p in points]


def test_roofline_places_each_layer_of_the_point(sweep_dir: Path) -> None:
    sweep = open_sweep(sweep_dir)
    point = int(sweep.table["point"].iloc[2])
    fig = sweep_figure(sweep_dir, "roofline", points=[point])
    ax = fig.axes[0]
    hw, report = sweep.report(sweep.row(point))
    assert report.total_cycles == sweep.row(point)["total_cycles"]
    expected = roofline_points(report)
    drawn = np.concatenate([c.get_offsets() for c in ax.collections
                            if str(c.get_gid()).startswith("layers:")])
    xmax = ax.get_xlim()[1] / 1.5
    want = np.array([[x if np.isfinite(x) else xmax, y] for _, _, x, y in expected])
    np.testing.assert_allclose(np.sort(drawn, axis=0), np.sort(want, axis=0), rtol=1e-12)
    roof = next(line for line in ax.get_lines() if line.get_gid() == "roof")
    peak = 2.0 * hw.linear.macs_per_cycle * hw.clock_mhz * 1e6
    assert roof.get_ydata().max() == pytest.approx(peak)
    assert ax.get_xscale() == "log" and "ops/byte" in ax.get_xlabel()


def test_utilization_bars_are_the_table_percentages(sweep_dir: Path) -> None:
    sweep = open_sweep(sweep_dir)
    fig = sweep_figure(sweep_dir, "utilization")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    ids = [int(label.split()[0][1:]) for label in labels]
    rows = pd.DataFrame([sweep.row(p) for p in ids])
    assert rows["reference"].any()
    for container, col in zip(ax.containers, ("dsp_util", "bram_util", "lut_util", "ff_util"),
                              strict=True):
        np.testing.assert_allclose([b.get_height() for b in container],
                                   100.0 * rows[col].to_numpy(float), rtol=1e-12)


@pytest.mark.parametrize("kind", [k for k in PLOT_KINDS if k != "accuracy-bits"])
def test_each_kind_writes_a_deterministic_file(sweep_dir: Path, tmp_path: Path,
                                               kind: str) -> None:
    a = plot_sweep(sweep_dir, kind, tmp_path / f"{kind}.svg")
    b = plot_sweep(sweep_dir, kind, tmp_path / f"{kind}-again.svg")
    assert a.stat().st_size > 5000
    assert a.read_bytes() == b.read_bytes()
    png = plot_sweep(sweep_dir, kind, tmp_path / f"{kind}.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pdf_output(sweep_dir: Path, tmp_path: Path) -> None:
    pdf = plot_sweep(sweep_dir, "pareto", tmp_path / "p.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.read_bytes() == plot_sweep(sweep_dir, "pareto", tmp_path / "q.pdf").read_bytes()
