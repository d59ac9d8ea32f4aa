"""The sweep/pareto/plot commands, the examples, and the Edge-MoE example space."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pandas as pd
import pytest
from _dse_cases import write_space

from vitaccel.cli import main
from vitaccel.dse import load_space, sample_points
from vitaccel.fixed import FixedType

ROOT = Path(__file__).resolve().parent.parent


def test_sweep_pareto_plot_commands(tmp_path: Path, capsys) -> None:
    space = write_space(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(space), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "points sampled" in text and "pruned by constraints" in text
    assert main(["pareto", str(out), "--minimize", "latency_ms,energy_mj"]) == 0
    text = capsys.readouterr().out
    table = pd.read_parquet(out / "results.parquet")
    front = pd.read_csv(out / "pareto.csv")
    assert f"Pareto set: {len(front)} of {len(table)} points" in text
    assert set(front["point"]) <= set(table.loc[table["feasible"], "point"])
    for kind in ("pareto", "utilization"):
        png = tmp_path / f"{kind}.png"
        assert main(["plot", str(out), "--kind", kind, "--out", str(png)]) == 0
        assert png.stat().st_size > 1000
    # re-running the same command resumes: nothing left to do
    assert main(["sweep", str(space), "--out", str(out), "--workers", "1", "--quiet",
                 "--resume"]) == 0
    assert "0 evaluated" in capsys.readouterr().out


def test_command_errors_exit_2_with_one_line(tmp_path: Path, capsys) -> None:
    bad = write_space(tmp_path, "name: x\nhw: kv260_default\naxes:\n  linear.tile: [4]\n")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "space.yaml:4: axes.linear.tile: unknown key" in err
    assert main(["pareto", str(tmp_path), "--minimize", "dsp"]) == 2
    assert "no results" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plot", str(tmp_path), "--kind", "pie", "--out", "x.png"])


def test_digits_example_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    script = ROOT / "examples" / "dse_digits.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--out", str(tmp_path), "--points", "3",
                                      "--images", "8", "--workers", "1"])
    runpy.run_path(str(script), run_name="__main__")
    assert "Pareto set:" in capsys.readouterr().out
    for kind in ("pareto", "breakdown", "roofline", "accuracy-bits", "utilization"):
        assert (tmp_path / f"{kind}.png").stat().st_size > 1000


def test_edge_moe_space_sweeps_around_the_published_design() -> None:
    space = load_space(ROOT / "examples" / "edge_moe_dse.yaml")
    assert set(space.keys) >= {"linear.tile_in", "linear.tile_out", "attention.parallel_queries",
                               "clock_mhz", "precision.act.width", "precision.weight.width",
                               "variants.softmax", "variants.gelu"}
    assert dict((a.key, a.values) for a in space.axes)["attention.parallel_queries"] \
        == tuple(range(1, 17))
    assert space.reference and space.model == "edge-moe" and space.hw.board.name == "zcu102"
    assert space.reference_label.startswith("published Edge-MoE")
    hw = space.hw  # the reference point is the base design: the published configuration
    assert (hw.linear.tile_in, hw.linear.tile_out, hw.attention.parallel_queries,
            hw.clock_mhz, hw.variants.softmax, hw.variants.gelu) == (16, 16, 4, 300, "online",
                                                                     "delta_table")
    from vitaccel.ir import get_precision

    prec = get_precision(space.precision)
    assert prec.roles["act"] == FixedType(32, 10) and prec.roles["weight"] == FixedType(16, 2)
    points = sample_points(space)
    assert 2000 <= len(points) <= 3000 and points == sample_points(space)
