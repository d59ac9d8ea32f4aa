"""HLS generation and C-simulation speed vs the Python simulator.

For deit-tiny (224x224, 197 tokens, random weights) on the default KV260 configuration: time to
emit the project, g++ compile time of kernel + testbench, and C-simulation time per image
against the bit-accurate simulator's time per image. The ratio csim/sim is the simulator's
advantage (C-simulation of ap_fixed code runs at well under 1 GMAC/s). The C-simulation must
also be bit-exact, which this script checks.

Usage: python benchmarks/bench_codegen.py [--model deit-tiny] [--images 1] [--precision edge-moe]
       [--optimize -O2] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vitaccel.codegen import csim, emit, write_project
from vitaccel.hw import load_hw_config
from vitaccel.ir._build import Numerics, build_graph
from vitaccel.models import build_model, count_macs
from vitaccel.sim import simulate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="deit-tiny")
    ap.add_argument("--images", type=int, default=1)
    ap.add_argument("--precision", default="edge-moe")
    ap.add_argument("--hw", default="kv260_default")
    ap.add_argument("--optimize", default="-O2")
    ap.add_argument("--out", help="project directory (default: a temporary one)")
    args = ap.parse_args()

    torch.manual_seed(0)
    model = build_model(args.model).eval()
    cfg = model.cfg
    hw = load_hw_config(args.hw)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(args.images, cfg.in_chans, *cfg.img_size)) / 256.0
    graph = build_graph(model, args.precision, numerics=Numerics.from_hw(hw), calibration=x)

    simulate(graph, x[:1])  # JIT warm-up
    t0 = time.perf_counter()
    simulate(graph, x)
    sim_per_image = (time.perf_counter() - t0) / len(x)
    golden = simulate(graph, x, keep=True)

    t0 = time.perf_counter()
    files = emit(graph, hw, images=x, golden=golden)
    t_emit = time.perf_counter() - t0
    size_mb = sum(len(v) if isinstance(v, bytes) else len(v.encode()) for v in files.values())

    with tempfile.TemporaryDirectory(prefix="vitaccel-bench-") as tmp:
        out = write_project(files, Path(args.out) if args.out else Path(tmp) / "hls",
                            force=bool(args.out))
        result = csim(out, optimize=args.optimize)
    if result.mismatch == "compile failed":
        raise SystemExit(result.log)
    csim_per_image = result.run_s / len(x)
    gmac = count_macs(cfg) / 1e9
    print(f"{args.model} ({args.precision}, {hw.name}), {len(x)} image(s), "
          f"{gmac:.2f} GMAC per image")
    print(f"  emit:            {t_emit:8.2f} s  ({len(files)} files, {size_mb / 1e6:.1f} MB)")
    print(f"  g++ {args.optimize}:          {result.compile_s:8.2f} s")
    print(f"  csim per image:  {csim_per_image:8.2f} s  ({gmac / csim_per_image:.3f} GMAC/s)")
    print(f"  sim per image:   {sim_per_image:8.3f} s  ({gmac / sim_per_image:.2f} GMAC/s)")
    print(f"  csim / sim:      {csim_per_image / sim_per_image:8.1f}x")
    print(f"  bit-exact:       {result.exact}/{result.images} images"
          + ("" if result.passed else f"  (differs: {result.mismatch})"))


if __name__ == "__main__":
    main()
