"""How many cost estimates per second ``vitaccel.estimate`` makes (one core).

Builds the ``deit-small`` graph once (random weights; the cost model only reads shapes and
formats), then estimates it on the ZCU102 while sweeping linear-engine tiles, attention
parallelism and DRAM ports, so that every call prices a different design point, as a
design-space exploration does. Prints estimates per second and the ratio to the target of
1,000 per second per core; it does not pass or fail.

Run: ``.venv/bin/python benchmarks/bench_estimate.py [--model deit-small] [--seconds 3]``
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

TARGET_PER_S = 1000.0


def _graph(name: str, hw):
    import torch

    from vitaccel.ir._build import Numerics, build_graph
    from vitaccel.models import build_model, get_config

    torch.manual_seed(0)
    model = build_model(get_config(name)).eval()
    cfg = model.cfg
    calibration = np.random.default_rng(0).random((2, cfg.in_chans, *cfg.img_size))
    return build_graph(model, hw.precision, numerics=Numerics.from_hw(hw),
                       calibration=calibration)


def _design_points(base):
    from vitaccel.hw import with_knob

    points = []
    for tile, p, ports in itertools.product((8, 16, 32), (1, 2, 4, 8), (2, 4)):
        hw = with_knob(base, "linear.tile_in", tile)
        hw = with_knob(hw, "linear.tile_out", tile)
        hw = with_knob(hw, "attention.parallel_queries", p)
        points.append(with_knob(hw, "memory.num_dram_ports", ports))
    return points


def main() -> None:
    from vitaccel import estimate
    from vitaccel.hw import load_hw_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="deit-small")
    ap.add_argument("--hw", default="zcu102_edge_moe")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()

    base = load_hw_config(args.hw)
    t0 = time.perf_counter()
    graph = _graph(args.model, base)
    build_s = time.perf_counter() - t0
    points = _design_points(base)
    t0 = time.perf_counter()
    first = estimate(graph, base)
    first_s = time.perf_counter() - t0

    count, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < args.seconds:
        for hw in points:
            estimate(graph, hw)
        count += len(points)
    wall_rate = count / (time.perf_counter() - t0)
    rate = count / max(time.process_time() - c0, 1e-9)
    print(f"model {args.model} ({len(graph)} nodes) on {args.hw}: graph built in "
          f"{build_s:.1f} s; first estimate {first_s * 1e3:.1f} ms (includes the per-graph "
          f"workload summary); {first.total_cycles:,} cycles = {first.latency_ms:.2f} ms")
    print(f"estimates per CPU-second (one core): {rate:,.0f} over {len(points)} design points "
          f"(target {TARGET_PER_S:,.0f}/s per core: ratio {rate / TARGET_PER_S:.2f}); "
          f"wall-clock rate {wall_rate:,.0f}/s")


if __name__ == "__main__":
    main()
