"""``vitaccel demo``: run every stage of vitaccel end to end on the built-in default."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from vitaccel.cli import _codegen, _dynamic, _estimate, _simulate, _sweep, _train

__all__ = ["register", "STEPS"]


def _step_fixed_point(args: argparse.Namespace) -> None:
    import numpy as np

    from vitaccel.fixed import FixedType

    act = FixedType.parse("ap_fixed<32,10>")
    wgt = FixedType.parse("ap_fixed<16,2>")
    x = np.linspace(-3.0, 3.0, 7)
    raw = wgt.quantize(x)
    print(f"  {wgt}: {x.tolist()} -> raw {raw.tolist()}")
    print(f"  back in {act}: {act.to_float(act.cast(raw, wgt)).tolist()}")


# (title, function) pairs, run in order; later stages append theirs here.
STEPS: list[tuple[str, Callable[[argparse.Namespace], None]]] = [
    ("fixed-point core", _step_fixed_point),
    ("reference model: digits", _train.demo_step),
    ("bit-accurate simulation of the digits test set under each precision preset",
     _simulate.demo_step),
    ("cost estimate (digits on the default board, Edge-MoE on the ZCU102)", _estimate.demo_step),
    ("Vitis HLS C++ generation and bit-exact C-simulation (digits)", _codegen.demo_step),
    ("mixture of experts and early exit, float vs bit-accurate (digits)", _dynamic.demo_step),
    ("design-space sweep with accuracy and its Pareto plot (digits)", _sweep.demo_step),
]


def _run(args: argparse.Namespace) -> int:
    for i, (title, step) in enumerate(STEPS, 1):
        t0 = time.perf_counter()
        print(f"[{i}/{len(STEPS)}] {title}")
        step(args)
        print(f"      done in {time.perf_counter() - t0:.1f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run everything vitaccel does, end to end, on the built-in default",
        description="Run every stage of vitaccel end to end on the built-in default model "
        "and board, printing what each stage measured.",
    )
    p.set_defaults(func=_run)
