"""Points per second of a cost-only sweep on ``deit-small``: serial, all cores, Dask.

One space of 12,000 design points (linear tiles 4..64, attention P 1..16, clock 200..400 MHz,
DRAM ports, weight buffering) around the Edge-MoE configuration on the ZCU102, evaluated
three times into fresh folders:

1. serially in this process (``workers=1``);
2. on a local process pool with every core (``workers=None``);
3. on a ``distributed.LocalCluster`` with 2 worker processes (``dask=client``).

Every run starts with empty caches and quantizes the model once per worker (one graph key:
the sweep varies no numerics except P, whose graphs are derived, not re-quantized), so the
wall time includes that one-off setup (printed separately) and, for Dask, starting the
worker processes. The three tables
are checked to be identical. Prints points/s and ratios; it does not pass or fail.

Run: ``.venv/bin/python benchmarks/bench_sweep.py [--out DIR] [--keep]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

SPACE = """\
name: bench-deit-small
model: deit-small
hw: zcu102_edge_moe
precision: edge-moe
reference: false
axes:
  linear.tile_in: [4, 8, 16, 32, 64]
  linear.tile_out: [4, 8, 16, 32, 64]
  attention.parallel_queries: {min: 1, max: 16, step: 1}
  clock_mhz: {min: 200, max: 400, step: 50}
  memory.num_dram_ports: [1, 2, 4]
  linear.weight_buffering: [single, pingpong]
"""


def _setup_seconds(space_path: Path) -> float:
    """Time to load the model and quantize its graph once (what every worker pays first)."""
    from vitaccel.dse import load_space, plan_points
    from vitaccel.dse._evaluate import SweepContext, clear_caches, point_report

    space = load_space(space_path)
    first = plan_points(space).points[0]
    ctx = SweepContext(space.model, space.checkpoint, space.hw, space.precision, space.data,
                       space.task, 0, space.constraints, space.keys)
    t0 = time.perf_counter()
    point_report(ctx, first.knobs)
    seconds = time.perf_counter() - t0
    clear_caches()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="folder for the three result folders (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the result folders")
    args = parser.parse_args()

    import pandas as pd
    from distributed import Client, LocalCluster

    from vitaccel.dse import load_space, run_sweep
    from vitaccel.dse._evaluate import clear_caches

    root = Path(args.out or tempfile.mkdtemp(prefix="bench-sweep-"))
    root.mkdir(parents=True, exist_ok=True)
    space_path = root / "space.yaml"
    space_path.write_text(SPACE, encoding="utf-8")
    n = load_space(space_path).grid_size
    cores = os.cpu_count() or 1
    print(f"cost-only sweep of {n:,} points on deit-small (ZCU102, edge-moe precision), "
          f"{cores} cores")
    setup = _setup_seconds(space_path)
    print(f"one-off setup per worker (model + quantized graph): {setup:.1f} s")

    rows = []
    tables = {}

    def run(label: str, **kwargs) -> None:
        out = root / label.replace(" ", "_")
        shutil.rmtree(out, ignore_errors=True)
        clear_caches()
        t0 = time.perf_counter()
        result = run_sweep(space_path, out, progress=False, **kwargs)
        wall = time.perf_counter() - t0
        tables[label] = result.table
        rows.append((label, result.evaluated, wall))
        print(f"  {label:<28} {result.evaluated:>7,} points in {wall:7.1f} s = "
              f"{result.evaluated / wall:8.1f} points/s", flush=True)

    run("serial", workers=1)
    run(f"process pool ({cores} cores)", workers=None)
    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        print(f"  (Dask cluster started in {time.perf_counter() - t0:.1f} s, not counted)")
        run("dask LocalCluster (2 workers)", dask=client)

    base = next(iter(tables.values()))
    for label, table in tables.items():
        pd.testing.assert_frame_equal(table, base, obj=label)
    print("tables identical across the three runs")
    serial = rows[0][1] / rows[0][2]
    for label, count, wall in rows[1:]:
        print(f"  {label}: {count / wall / serial:.2f}x serial")
    if not args.keep and not args.out:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
