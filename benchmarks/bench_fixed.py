"""Speed of the bit-exact fixed-point matmul relative to a float64 numpy matmul.

For a 197x192 @ 192x768 product (one ViT-Tiny-like linear layer) this prints, per format set,
the path :func:`vitaccel.fixed.fixed_matmul` chooses, its time divided by the time of a float64
``numpy`` matmul of the same shape (both medians of repeats, measured in the same run, after
JIT warm-up), and the exact sequential path's multiply-accumulates per second.

Run: ``.venv/bin/python benchmarks/bench_fixed.py [--repeats N]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from vitaccel.fixed import FixedType, fixed_matmul
from vitaccel.fixed._matmul import legal_paths

M, K, N = 197, 192, 768


def _paired(fn: Callable[[], object], ref: Callable[[], object], repeats: int):
    """Median time of ``fn`` and median of its per-repeat ratio to ``ref``, interleaved.

    Interleaving makes both see the same machine load; both are run once first (JIT warm-up).
    """
    fn()
    ref()
    times, ratios = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ref()
        t1 = time.perf_counter()
        fn()
        t2 = time.perf_counter()
        times.append(t2 - t1)
        ratios.append((t2 - t1) / (t1 - t0))
    return statistics.median(times), statistics.median(ratios)


def _case(name, x_t, w_t, acc_t, product_t, x_float, w_float, w_float_ref, repeats):
    x = x_t.quantize(x_float)
    w = w_t.quantize(w_float)
    legal = legal_paths(
        (int(x.min()), int(x.max())),
        (int(w.min()), int(w.max())),
        (0, 0),
        K,
        x_t,
        w_t,
        acc_t,
        product_t,
        False,
    )
    path = next(iter(legal))

    def ref():
        return x_float @ w_float_ref

    def auto():
        return fixed_matmul(x, x_t, w, w_t, acc_t=acc_t, product_t=product_t)

    def exact():
        return fixed_matmul(x, x_t, w, w_t, acc_t=acc_t, product_t=product_t, path="exact")

    auto_s, auto_ratio = _paired(auto, ref, repeats)
    exact_s, exact_ratio = _paired(exact, ref, max(3, repeats // 4))
    print(
        f"{name:<44} {path:>7} {auto_s * 1e3:9.2f} ms {auto_ratio:7.2f}x "
        f"{exact_ratio:8.1f}x {M * K * N / exact_s / 1e6:10.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21, help="timed repeats per case")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x_float = rng.normal(0.0, 2.0, (M, K))
    w_float = rng.normal(0.0, 0.3, (K, N))
    t0 = time.perf_counter()
    x_float @ w_float
    print(
        f"float64 numpy matmul {M}x{K} @ {K}x{N}: {(time.perf_counter() - t0) * 1e3:.2f} ms "
        "(one run; ratios below are medians of interleaved pairs)"
    )
    print(
        f"{'format set':<44} {'path':>7} {'time':>12} {'ratio':>8} {'exact':>9} "
        f"{'exact MMAC/s':>12}"
    )
    act, wgt = FixedType.parse("ap_fixed<32,10>"), FixedType.parse("ap_fixed<16,2>")
    _case(
        "Edge-MoE act<32,10> w<16,2> p,acc<32,10>",
        act,
        wgt,
        act,
        act,
        x_float,
        w_float,
        w_float,
        args.repeats,
    )
    x8, w8 = FixedType.parse("ap_fixed<8,3>"), FixedType.parse("ap_fixed<8,1>")
    x8_float = rng.uniform(x8.min_value, x8.max_value, (M, K))
    w8_float = rng.uniform(w8.min_value, w8.max_value, (K, N))
    for acc_text, label in (
        ("ap_fixed<24,12>", "8-bit, acc <24,12> (full precision)"),
        ("ap_fixed<24,12,AP_RND,AP_SAT>", "8-bit, acc <24,12,AP_RND,AP_SAT>"),
        ("ap_fixed<20,8,AP_TRN,AP_SAT>", "8-bit, acc <20,8,AP_TRN,AP_SAT> (clamps)"),
        ("ap_fixed<16,6,AP_RND,AP_SAT>", "8-bit, acc <16,6,AP_RND,AP_SAT> (rounds)"),
    ):
        _case(
            label,
            x8,
            w8,
            FixedType.parse(acc_text),
            None,
            x8_float,
            w8_float,
            w_float,
            args.repeats,
        )
    print(
        "ratio = fixed_matmul (automatic path) / float64 matmul; exact = forced sequential "
        "path / float64 matmul"
    )


if __name__ == "__main__":
    main()
