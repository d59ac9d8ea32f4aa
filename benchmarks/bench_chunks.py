"""Chunk size: simulation time per image with the default chunk and with fixed ones, measured
in one run.

deit-tiny (224x224, random weights) on ``--images`` random images under the w8a8 and
edge-moe presets. The simulator works on chunks of images (``simulate(batch_size=...)``;
the bits do not depend on it, which this script checks). The default,
:func:`vitaccel.sim._simulate.images_per_chunk`, keeps the largest int64 tensor of a chunk
within 16 MiB (13 images for deit-tiny); larger chunks make every big tensor a fresh mapping
of pages to fault in. Each setting runs in turn ``--repeats`` times; the script prints the
best time per image and its ratio to the default's.

Usage: python benchmarks/bench_chunks.py [--images 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np
from bench_sim import model_and_batch, run_in_turn

from vitaccel.ir._build import build_graph
from vitaccel.sim import simulate
from vitaccel.sim._simulate import images_per_chunk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    model, x, _ = model_and_batch("deit-tiny", args.images)
    sizes = (None, 8, 16, 32, 64)
    for preset in ("w8a8", "edge-moe"):
        graph = build_graph(model, preset, calibration=x[:8])
        outs = [simulate(graph, x, batch_size=bs).outputs for bs in sizes]  # compile, compare
        for other in outs[1:]:
            for name, codes in outs[0].items():
                np.testing.assert_array_equal(other[name], codes)
        times = run_in_turn([partial(simulate, graph, x, batch_size=bs) for bs in sizes],
                            args.repeats)
        best = [min(t) / args.images * 1e3 for t in times]
        print(f"{preset}: default chunk {images_per_chunk(graph)} images")
        for bs, ms in zip(sizes, best, strict=True):
            label = "default" if bs is None else f"{bs} images"
            print(f"  {label:<10} {ms:7.1f} ms per image  {ms / best[0]:5.2f}x the default")


if __name__ == "__main__":
    main()
