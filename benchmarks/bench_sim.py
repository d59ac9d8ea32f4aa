"""Simulator speed: bit-accurate simulation time / float PyTorch time, measured in one run.

deit-tiny (224x224, 197 tokens, random weights) on one batch, under the w8a8, w16a16 and
edge-moe precision presets. Prints the ratio per preset (targets: <= 2.0 for w8a8 and w16a16,
<= 8.0 for edge-moe, whose per-product casts rule out BLAS shortcuts).

Usage: python benchmarks/bench_sim.py [--batch 8] [--repeats 3] [--model deit-tiny]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vitaccel.ir._build import build_graph
from vitaccel.models import build_model
from vitaccel.sim import simulate


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="deit-tiny")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    torch.manual_seed(0)
    model = build_model(args.model).eval()
    cfg = model.cfg
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(args.batch, cfg.in_chans, *cfg.img_size)) / 256.0
    xt = torch.from_numpy(x).float()

    def run_torch() -> None:
        with torch.no_grad():
            model(xt)

    run_torch()
    print(f"{args.model}, batch {args.batch}, torch threads {torch.get_num_threads()}")
    print(f"{'precision':<10} {'sim s':>8} {'torch s':>8} {'sim/torch':>10}")
    for preset in ("w8a8", "w16a16", "edge-moe"):
        graph = build_graph(model, preset, calibration=x)
        simulate(graph, x[:1])  # JIT warm-up
        t_sim = best_time(lambda g=graph: simulate(g, x), args.repeats)
        t_torch = best_time(run_torch, args.repeats)
        print(f"{preset:<10} {t_sim:>8.3f} {t_torch:>8.3f} {t_sim / t_torch:>10.2f}")


if __name__ == "__main__":
    main()
