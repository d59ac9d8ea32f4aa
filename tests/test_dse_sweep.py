"""Sweeps: serial == process pool == Dask, resume after interruption, safety checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from _dse_cases import COST_SPACE, write_space

import vitaccel.dse._runner as runner
from vitaccel.dse import load_results, load_space, run_sweep
from vitaccel.dse._evaluate import run_task
from vitaccel.errors import UsageError, VitaccelError


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("serial")
    space = write_space(folder)
    result = run_sweep(space, folder / "out", workers=1, progress=False, chunk_size=8)
    return space, result.table


def test_table_has_one_row_per_point_with_knobs_and_metrics(serial) -> None:
    space, table = serial
    assert table["point"].is_monotonic_increasing and table["point"].is_unique
    for col in ("linear.tile_in", "precision.act.width", "clock_mhz", "latency_ms", "dsp",
                "bram36", "lut", "ff", "dsp_util", "energy_mj", "fits", "feasible"):
        assert col in table.columns
    ref = table[table["reference"]]
    assert len(ref) == 1 and int(ref["precision.act.width"].iloc[0]) == 16  # w16a16's act
    assert int(ref["attention.parallel_queries"].iloc[0]) == 4  # the base config's P
    out = space.parent / "out"
    pd.testing.assert_frame_equal(load_results(out), table)
    csv = pd.read_csv(out / "results.csv")
    assert csv["point"].tolist() == table["point"].tolist()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == len(table) and summary["evaluated"] == len(table)
    assert (out / "pareto.csv").is_file()


def test_metrics_match_a_direct_estimate(serial) -> None:
    from vitaccel.dse._reload import open_sweep

    space, table = serial
    sweep = open_sweep(space.parent / "out")
    row = table.iloc[5]
    _, report = sweep.report(row)
    assert report.total_cycles == row["total_cycles"]
    assert report.resources.dsp == row["dsp"]
    assert report.latency_ms == pytest.approx(row["latency_ms"], rel=0, abs=0)


def test_pruning_never_drops_a_satisfying_point(serial, tmp_path: Path) -> None:
    """Same space without constraints: the rows satisfying them are exactly the kept ones."""
    space, table = serial
    plan = runner.plan_points(load_space(space))
    assert plan.pruned > 0  # the knob-only constraint pruned before evaluation
    free = COST_SPACE[: COST_SPACE.index("constraints:")] + COST_SPACE[
        COST_SPACE.index("objectives:"):]
    res = run_sweep(write_space(tmp_path, free), tmp_path / "out", workers=1, progress=False)
    full = res.table
    assert res.plan.pruned == 0 and len(full) == plan.sampled
    ok = (full["fits"] & ((full["dsp_util"] <= 0.08) | (full["linear.tile_in"] < 8))
          & (full["linear.tile_in"] * full["linear.tile_out"] <= 96))
    assert set(full.loc[ok, "point"]) == set(table.loc[table["feasible"], "point"])
    assert len(table) == plan.sampled - plan.pruned


def test_dask_local_cluster_equals_serial(serial, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    space, table = serial
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        res = run_sweep(space, tmp_path / "dask", dask=client, progress=False, chunk_size=8)
    pd.testing.assert_frame_equal(res.table, table)


def test_resume_after_interruption_gives_the_same_table(serial, tmp_path: Path,
                                                        monkeypatch) -> None:
    space, table = serial
    out = tmp_path / "resume"
    calls = {"n": 0}
    real = runner.run_task

    def flaky(task):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(runner, "run_task", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(space, out, workers=1, progress=False, chunk_size=8)
    monkeypatch.setattr(runner, "run_task", real)
    chunks = sorted((out / "chunks").glob("*.parquet"))
    assert len(chunks) == 3 and not (out / "results.parquet").exists()
    done = sum(len(pd.read_parquet(c)) for c in chunks)
    (out / "chunks" / ".part-half-written.parquet.tmp").write_bytes(b"PAR1 truncated")
    res = run_sweep(space, out, workers=1, progress=False, chunk_size=8, resume=True)
    assert res.skipped == done and res.evaluated == len(table) - done
    pd.testing.assert_frame_equal(res.table, table)
    assert not list((out / "chunks").glob(".*.tmp"))
    again = run_sweep(space, out, workers=1, progress=False)
    assert again.evaluated == 0
    pd.testing.assert_frame_equal(again.table, table)


def _dies_on_point_7(task):
    """A task that kills its worker process (as the OOM killer would)."""
    if any(pid == 7 for pid, _, _ in task.points):
        os._exit(3)
    return run_task(task)


def test_killed_worker_loses_only_points_in_flight(serial, tmp_path: Path,
                                                   monkeypatch) -> None:
    """Process pool: a worker dies; the rerun on a fresh pool equals the serial table."""
    space, table = serial
    out = tmp_path / "killed"
    monkeypatch.setattr(runner, "run_task", _dies_on_point_7)
    with pytest.raises(VitaccelError, match="worker process died"):
        run_sweep(space, out, workers=2, progress=False, chunk_size=4)
    monkeypatch.undo()
    saved = {int(p) for c in (out / "chunks").glob("*.parquet")
             for p in pd.read_parquet(c)["point"]}
    assert 7 not in saved
    res = run_sweep(space, out, workers=2, progress=False, chunk_size=4)
    assert res.skipped == len(saved) and res.evaluated == len(table) - len(saved)
    pd.testing.assert_frame_equal(res.table, table)


def test_changed_space_or_accuracy_is_refused(serial, tmp_path: Path) -> None:
    space, _ = serial
    out = space.parent / "out"
    changed = write_space(tmp_path, COST_SPACE.replace("[200, 300]", "[200, 250]"))
    with pytest.raises(UsageError, match="different space"):
        run_sweep(changed, out, workers=1, progress=False)
    with pytest.raises(UsageError, match="--accuracy"):
        run_sweep(space, out, accuracy=4, workers=1, progress=False)
    with pytest.raises(UsageError, match="no sweep to resume"):
        run_sweep(space, tmp_path / "empty", resume=True, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match="not a sweep folder"):
        run_sweep(space, tmp_path / "other", progress=False)
    with pytest.raises(UsageError, match="--workers"):
        run_sweep(space, tmp_path / "w", workers=0, progress=False)


def test_accuracy_constraint_needs_accuracy(tmp_path: Path) -> None:
    space = write_space(tmp_path, COST_SPACE.replace("constraints: [fits,",
                                                     "constraints: [accuracy > 0.5, fits,"))
    with pytest.raises(UsageError, match="pass --accuracy"):
        run_sweep(space, tmp_path / "out", progress=False)
