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
* ``gelu + out``: a fused GELU's output assigned to the linear node's format in the GELU
  kernel's pass, on the accumulator codes as they are, against ``forward`` (which validates
  them) and a separate assignment.
* ``layernorm + out``: the same for the LayerNorm nodes' output assignment.
* ``drop dead``: the simulator dropping each tensor after its last reader (freed blocks are
  reused instead of fresh pages faulted in) against keeping every tensor of the chunk.
* ``count sums``: the write-back's overflow totals by a compiled column sum against numpy's
  ``sum(axis=0)``.

Usage: python benchmarks/bench_paths.py [--batch 8] [--repeats 5] [--model deit-tiny]
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
from bench_sim import model_and_batch, parse_args, run_in_turn

from vitaccel.fixed import _blas, _epilogue, _fma_floor, _matmul
from vitaccel.ir._build import build_graph
from vitaccel.sim import _simulate, simulate
from vitaccel.units import attention, linear
from vitaccel.units.layernorm import FixedLayerNorm, LayerNorm


def _numpy_head_operands(qkv, heads, head_dim):
    b, t, _ = qkv.shape
    q, k, v = (p.reshape(b * heads, t, head_dim)
               for p in attention._split_heads(qkv, heads, head_dim))
    return tuple(np.ascontiguousarray(a) for a in (q, k.transpose(0, 2, 1), v))


def _gelu_then_assign(gelu, acc, acc_t, dst, role, overflow):
    y = gelu.forward(acc, acc_t, overflow=overflow)
    out, n = dst.cast(y, gelu.out_t, return_overflow=True)
    overflow[role] = overflow.get(role, 0) + int(n)
    return out


def toggles() -> list[tuple[str, str, object, str, Callable]]:
    """(label, preset, module, attribute, its stand-in when off) of each switchable path."""
    rows = []
    if _fma_floor.available():
        rows.append(("fma_floor", "edge-moe", _matmul, "fma_available", lambda: False))
    for preset in ("w16a16", "w8a8"):
        rows.append(("torch matmul", preset, _blas, "torch_is_exact", lambda dtype: False))
    rows.append(("head split", "w8a8", attention, "_head_operands", _numpy_head_operands))
    rows.append(("gelu + out", "w8a8", linear, "gelu_assigned", _gelu_then_assign))
    rows.append(("layernorm + out", "w8a8", FixedLayerNorm, "forward_assigned",
                 LayerNorm.forward_assigned))
    for preset in ("w8a8", "edge-moe"):
        rows.append(("drop dead", preset, _simulate, "_last_uses", lambda graph: {}))
    rows.append(("count sums", "w8a8", _epilogue, "column_sums",
                 lambda counts: counts.sum(axis=0).tolist()))
    return rows


def main() -> None:
    args = parse_args(__doc__, repeats=5)
    model, x, run_torch = model_and_batch(args.model, args.batch)
    print(f"{args.model}, batch {args.batch}, {args.repeats} turns")
    print(f"{'path':<16} {'precision':<10} {'on/off':>7} {'on/torch':>9} {'off/torch':>10}")
    for label, preset, module, attr, stand_in in toggles():
        graph = build_graph(model, preset, calibration=x)
        original = getattr(module, attr)

        def run(impl, graph=graph, module=module, attr=attr):
            setattr(module, attr, impl)
            return simulate(graph, x).outputs

        try:
            on, off = run(original), run(stand_in)  # compile, and compare the bits
            for name in on:
                np.testing.assert_array_equal(on[name], off[name])
            on_t, off_t, torch_t = (np.array(t) for t in run_in_turn(
                [partial(run, original), partial(run, stand_in), run_torch], args.repeats))
        finally:
            setattr(module, attr, original)
        print(f"{label:<16} {preset:<10} {np.median(on_t / off_t):>7.2f} "
              f"{np.median(on_t / torch_t):>9.2f} {np.median(off_t / torch_t):>10.2f}")


if __name__ == "__main__":
    main()
