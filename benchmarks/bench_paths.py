"""Fast paths on and off: simulation time with a path / without it, measured in one run.

deit-tiny (224x224, random weights) on one batch. Each row switches one fast path off (by
patching the check that admits it, or the function, with a plain equivalent), runs the
simulation with the path on and off in turn ``--repeats`` times, checks that both give the
same output codes, and prints the median of the paired time ratios (on / off) and each
side's median time over the float PyTorch model's time in the same turn:

* ``fma_floor``: Edge-MoE's truncated products as round-down AVX-512 FMAs
  (:mod:`vitaccel.fixed._fma_floor`) against the int64 kernel (``floor64``); needs an
  AVX-512F host.
* ``torch matmul``: exact float BLAS products on torch's matmul against single-threaded
  OpenBLAS calls split over numba's threads (:mod:`vitaccel.fixed._blas`).
* ``head split``: the attention unit's compiled split of the fused qkv tensor into q, k^T
  and v per head against numpy reshapes and copies.

Usage: python benchmarks/bench_paths.py [--batch 8] [--repeats 5] [--model deit-tiny]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from vitaccel.fixed import _blas, _fma_floor, _matmul
from vitaccel.ir._build import build_graph
from vitaccel.models import build_model
from vitaccel.sim import simulate
from vitaccel.units import attention


def _numpy_head_operands(qkv, heads, head_dim):
    b, t, _ = qkv.shape
    q, k, v = (p.reshape(b * heads, t, head_dim)
               for p in attention._split_heads(qkv, heads, head_dim))
    return tuple(np.ascontiguousarray(a) for a in (q, k.transpose(0, 2, 1), v))


def toggles() -> list[tuple[str, str, object, str, Callable]]:
    """(label, preset, module, attribute, its stand-in when off) of each switchable path."""
    rows = []
    if _fma_floor.available():
        rows.append(("fma_floor", "edge-moe", _matmul, "fma_available", lambda: False))
    for preset in ("w16a16", "w8a8"):
        rows.append(("torch matmul", preset, _blas, "torch_is_exact", lambda dtype: False))
    rows.append(("head split", "w8a8", attention, "_head_operands", _numpy_head_operands))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="deit-tiny")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    torch.manual_seed(0)
    model = build_model(args.model).eval()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(args.batch, model.cfg.in_chans, *model.cfg.img_size)) / 256.0
    xt = torch.from_numpy(x).float()

    def run_torch() -> float:
        t0 = time.perf_counter()
        with torch.no_grad():
            model(xt)
        return time.perf_counter() - t0

    print(f"{args.model}, batch {args.batch}, {args.repeats} turns")
    print(f"{'path':<14} {'precision':<10} {'on/off':>7} {'on/torch':>9} {'off/torch':>10}")
    for label, preset, module, attr, stand_in in toggles():
        graph = build_graph(model, preset, calibration=x)
        original = getattr(module, attr)
        try:
            outputs = []
            for value in (True, False):  # compile, and compare the bits
                setattr(module, attr, original if value else stand_in)
                outputs.append(simulate(graph, x).outputs)
            for name in outputs[0]:
                np.testing.assert_array_equal(outputs[0][name], outputs[1][name])
            ratios, on_t, off_t = [], [], []
            for _ in range(args.repeats):
                times = {}
                for value in (True, False):
                    setattr(module, attr, original if value else stand_in)
                    t0 = time.perf_counter()
                    simulate(graph, x)
                    times[value] = time.perf_counter() - t0
                t_torch = run_torch()
                ratios.append(times[True] / times[False])
                on_t.append(times[True] / t_torch)
                off_t.append(times[False] / t_torch)
        finally:
            setattr(module, attr, original)
        print(f"{label:<14} {preset:<10} {np.median(ratios):>7.2f} {np.median(on_t):>9.2f} "
              f"{np.median(off_t):>10.2f}")


if __name__ == "__main__":
    main()
