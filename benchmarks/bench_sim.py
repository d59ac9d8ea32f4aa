"""Simulator speed: bit-accurate simulation time / float PyTorch time, measured in one run.

deit-tiny (224x224, 197 tokens, random weights) on one batch, under the w8a8, w16a16 and
edge-moe precision presets. Prints the ratio per preset (targets: <= 2.0 for w8a8 and w16a16,
<= 8.0 for edge-moe, whose per-product casts rule out BLAS shortcuts).

It also prints the floor that exact BLAS arithmetic sets: the graph's products (linear,
patch embedding, Q.K^T and A.V per head) as plain numpy float32 and float64 matmuls, over the
same torch time. The w8a8 products fit float32's exact range (in K chunks), the w16a16 ones
need float64.

``first s`` is the first full batch: it also loads (or, on a machine that never ran these
formats, compiles: seconds per kernel) the kernels specialised to the graph's formats
(:mod:`vitaccel.fixed._specialise`). Simulation and torch then run in turn ``--repeats``
times: ``sim/torch`` is the ratio of their best times, ``paired`` the median of the ratios of
the runs made one after the other (less swayed by a shared machine's changing load).

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
    return min(run_in_turn([fn], repeats)[0])


def run_in_turn(fns, repeats: int) -> list[list[float]]:
    """Times of each function, the functions run in turn ``repeats`` times (so that a
    change in the machine's load affects them alike)."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times, strict=True):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return times


def products(graph, batch: int) -> list[tuple[int, int, int, int]]:
    """(stack, M, K, N) of every matrix product of the graph on ``batch`` images."""
    out = []
    for node in graph:
        if node.op in ("linear", "patch_embed"):
            n_out, k = node.params["weight"].raw.shape
            tokens = graph.spec(node.name)[0][0]
            out.append((1, batch * tokens, k, n_out))
        elif node.op == "attention":
            tokens = graph.spec(node.name)[0][0]
            heads, hd = node.attrs["num_heads"], node.attrs["head_dim"]
            out += [(batch * heads, tokens, hd, tokens), (batch * heads, tokens, tokens, hd)]
    return out


def blas_time(shapes: list[tuple[int, int, int, int]], dtype, repeats: int) -> float:
    """Best time of the products as plain numpy matmuls in ``dtype``."""
    rng = np.random.default_rng(1)
    ops = [(rng.integers(-127, 128, (g, m, k)).astype(dtype),
            rng.integers(-127, 128, (g, k, n)).astype(dtype)) for g, m, k, n in shapes]

    def run() -> None:
        for a, b in ops:
            a @ b

    run()
    return best_time(run, repeats)


def parse_args(doc: str, repeats: int) -> argparse.Namespace:
    """``--model``, ``--batch`` and ``--repeats`` of a simulation benchmark."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--model", default="deit-tiny")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=repeats)
    return ap.parse_args()


def model_and_batch(name: str, batch: int):
    """The model (random weights, seed 0), a batch of random 8-bit images in [0, 1) and a
    function running the float PyTorch model on it (run once here, to warm it up)."""
    torch.manual_seed(0)
    model = build_model(name).eval()
    cfg = model.cfg
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(batch, cfg.in_chans, *cfg.img_size)) / 256.0
    xt = torch.from_numpy(x).float()

    def run_torch() -> None:
        with torch.no_grad():
            model(xt)

    run_torch()
    return model, x, run_torch


def main() -> None:
    args = parse_args(__doc__, repeats=3)
    model, x, run_torch = model_and_batch(args.model, args.batch)
    print(f"{args.model}, batch {args.batch}, torch threads {torch.get_num_threads()}")
    print(f"{'precision':<10} {'sim s':>8} {'torch s':>8} {'sim/torch':>10} {'first s':>8} "
          f"{'paired':>7}")
    for preset in ("w8a8", "w16a16", "edge-moe"):
        graph = build_graph(model, preset, calibration=x)
        simulate(graph, x[:1])  # JIT warm-up of the general kernels
        t_first = best_time(lambda g=graph: simulate(g, x), 1)
        sims, torchs = run_in_turn([lambda g=graph: simulate(g, x), run_torch], args.repeats)
        t_sim, t_torch = min(sims), min(torchs)
        paired = float(np.median(np.array(sims) / np.array(torchs)))
        print(f"{preset:<10} {t_sim:>8.3f} {t_torch:>8.3f} {t_sim / t_torch:>10.2f} "
              f"{t_first:>8.1f} {paired:>7.2f}")
    shapes = products(graph, args.batch)
    t_torch = best_time(run_torch, args.repeats)
    for name, dtype in (("float32", np.float32), ("float64", np.float64)):
        t = blas_time(shapes, dtype, args.repeats)
        print(f"{'BLAS ' + name:<10} {t:>8.3f} {t_torch:>8.3f} {t / t_torch:>10.2f}"
              "   (the products alone)")


if __name__ == "__main__":
    main()
