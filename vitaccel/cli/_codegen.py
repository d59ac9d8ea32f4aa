"""``vitaccel codegen`` and ``vitaccel csim``: generate a Vitis HLS project, C-simulate it."""

from __future__ import annotations

import argparse
import time

from vitaccel.cli._common import add_model_args, load_data, load_from_args
from vitaccel.errors import UsageError

__all__ = ["register"]

DEFAULT_IMAGES = 10


def _run_codegen(args: argparse.Namespace) -> int:
    from vitaccel.codegen import emit, write_project
    from vitaccel.models import get_config
    from vitaccel.sim import simulate

    if args.images < 0:
        raise UsageError(f"--images: expected a number >= 0, got {args.images}")
    cfg = get_config(args.model)
    x = None
    if args.images:
        args.n = args.images
        x, _ = load_data(args, cfg)
    loaded = load_from_args(args, x)
    t0 = time.perf_counter()
    golden = simulate(loaded.graph, x, task=args.task, keep=True) if x is not None else None
    files = emit(loaded.graph, loaded.hw, images=x, golden=golden,
                 embed_weights=args.embed_weights)
    out = write_project(files, args.out, force=args.force)
    n_img = 0 if x is None else len(x)
    print(f"generated {len(files)} files for {loaded.graph.name} ({loaded.precision.name}, "
          f"{loaded.hw.name}) in {time.perf_counter() - t0:.1f} s: {out}")
    print(f"testbench data: {n_img} image(s); next: vitaccel csim {out}")
    return 0


def _run_csim(args: argparse.Namespace) -> int:
    from vitaccel.codegen import csim

    result = csim(args.project, include_dir=args.include)
    print(f"compile {result.compile_s:.1f} s, run {result.run_s:.2f} s")
    for w in result.warnings:
        print(f"warning in generated code: {w}")
    if result.mismatch == "compile failed":
        print(result.log)
        print("csim: compile failed")
        return 1
    print(f"bit-exact: {result.exact}/{result.images} images")
    if not result.passed:
        print(f"csim: differs from the simulator: {result.mismatch}")
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "codegen",
        help="generate a Vitis HLS project (kernels, testbench, build scripts)",
        description="Quantize the model, then write Vitis HLS C++ (one function per layer, "
        "an extern \"C\" top function with m_axi/s_axilite ports and pragmas from the "
        "hardware config), ROMs, packed weights, a testbench with the simulator's golden "
        "outputs and per-layer tensors, a Makefile, hls_config.cfg and run_hls.tcl.",
    )
    add_model_args(p)
    p.add_argument("--out", required=True, metavar="DIR", help="project directory to write")
    p.add_argument("--force", action="store_true",
                   help="replace a non-empty directory that is not a vitaccel project")
    p.add_argument("--images", type=int, default=DEFAULT_IMAGES, metavar="N",
                   help=f"test images for the testbench (default {DEFAULT_IMAGES}; 0: none)")
    p.add_argument("--embed-weights", action="store_true",
                   help="compile the weights into the kernel as a ROM instead of reading them "
                   "through the weights m_axi port (small models)")
    p.add_argument("--data", default="digits",
                   help="'digits', a folder of images, or an .npz with arrays x [and y]")
    p.add_argument("--task", type=int, default=0, help="task index for MoE gates")
    p.set_defaults(func=_run_codegen)

    c = sub.add_parser(
        "csim",
        help="C-simulate a generated project with g++; exit 0 only if bit-exact",
        description="Compile the project's kernel and testbench with g++ (-std=c++17 -O2 "
        "-Wall) against the ap_fixed headers, run it, and compare every output and layer "
        "bit with the simulator's. Exit status 0 if bit-exact, 1 if not (printing where it "
        "first differs), 2 on usage errors.",
    )
    c.add_argument("project", metavar="DIR", help="project directory from vitaccel codegen")
    c.add_argument("--include", metavar="DIR",
                   help="directory holding ap_fixed.h (default: the hls4ml wheel's headers)")
    c.set_defaults(func=_run_csim)


def demo_step(args: argparse.Namespace) -> None:
    """``vitaccel demo``: generate the digits model's HLS project and C-simulate it."""
    import tempfile
    from pathlib import Path

    from vitaccel.cli._common import DEFAULT_HW, DEFAULT_MODEL
    from vitaccel.codegen import csim, emit, write_project
    from vitaccel.models import get_config
    from vitaccel.sim import simulate

    opts = argparse.Namespace(model=DEFAULT_MODEL, checkpoint=None, hw=DEFAULT_HW,
                              precision=None, data="digits", n=DEFAULT_IMAGES, task=0)
    x, _ = load_data(opts, get_config(opts.model))
    loaded = load_from_args(opts, x)
    files = emit(loaded.graph, loaded.hw, images=x, golden=simulate(loaded.graph, x, keep=True))
    with tempfile.TemporaryDirectory(prefix="vitaccel-hls-") as tmp:
        out = write_project(files, Path(tmp) / "digits_hls")
        print(f"  generated {len(files)} files ({loaded.precision.name}, {loaded.hw.name}) "
              f"in {out}")
        result = csim(out)
    print(f"  g++ compile {result.compile_s:.1f} s, testbench {result.run_s:.2f} s")
    print(f"  bit-exact: {result.exact}/{result.images} images"
          + ("" if result.passed else f"  (differs: {result.mismatch})"))
