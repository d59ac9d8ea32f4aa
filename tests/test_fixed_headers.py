"""Differential test of vitaccel.fixed against the real ``ap_fixed`` C++ headers.

A C++ harness is generated for formats drawn from a fixed seed, compiled once per session with
g++ against :func:`ap_types_include_dir`, fed thousands of cases on stdin, and every raw result
must equal the Python one bit for bit.
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from vitaccel.fixed import (
    FixedType,
    Overflow,
    Rounding,
    add_type,
    ap_types_include_dir,
    fixed_add,
    fixed_matmul,
    fixed_mul,
    fixed_sub,
    mul_type,
    sub_type,
)

SEED = 20261130
N_CONV_PAIRS, N_QUANT_VALUES, N_CAST_VALUES = 40, 120, 100
N_ARITH_PAIRS, N_ARITH_VALUES = 16, 60
N_ACC_COMBOS, N_ACC_SEQS = 16, 40

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


def _random_format(rng: random.Random, max_width: int = 40) -> FixedType:
    mid = min(16, max_width)
    width = rng.choice(
        [1, 2, 3, rng.randint(4, mid), rng.randint(4, mid), rng.randint(mid, max_width)]
    )
    int_bits = rng.choice([rng.randint(-3, width + 3), rng.randint(0, width), width, 0])
    signed = rng.random() < 0.65
    overflow = rng.choice([o for o in Overflow if signed or o is not Overflow.WRAP_SM])
    rounding = rng.choice(list(Rounding))
    sat_bits = rng.randint(0, width) if overflow in (Overflow.WRAP, Overflow.WRAP_SM) else 0
    if rng.random() < 0.4:
        sat_bits = 0
    return FixedType(width, int_bits, signed, rounding, overflow, sat_bits)


def _plain(fmt: FixedType) -> FixedType:
    return FixedType(fmt.width, fmt.int_bits, fmt.signed)


def _random_codes(rng: random.Random, fmt: FixedType, n: int) -> list[int]:
    edges = [fmt.min_raw, fmt.max_raw, 0, min(1, fmt.max_raw), max(-1, fmt.min_raw)]
    edges += [fmt.min_raw + 1, fmt.max_raw - 1]
    codes = [max(fmt.min_raw, min(fmt.max_raw, c)) for c in edges]
    while len(codes) < n:
        if rng.random() < 0.3:
            bits = rng.randint(0, fmt.width)
            lo, hi = max(fmt.min_raw, -(1 << bits)), min(fmt.max_raw, 1 << bits)
            codes.append(rng.randint(lo, hi))
        else:
            codes.append(rng.randint(fmt.min_raw, fmt.max_raw))
    return codes[:n]


def _random_doubles(rng: random.Random, fmt: FixedType, n: int) -> list[float]:
    lsb = 2.0**-fmt.frac_bits
    vals = [
        0.0,
        -0.0,
        fmt.max_value,
        fmt.min_value,
        fmt.max_value + lsb / 2,
        fmt.min_value - lsb / 2,
        fmt.max_value + lsb,
        fmt.min_value - lsb,
        lsb / 2,
        -lsb / 2,
    ]
    while len(vals) < n:
        kind = rng.random()
        if kind < 0.45:  # a code plus a fraction of the LSB (ties included)
            code = rng.randint(fmt.min_raw - (1 << fmt.width), fmt.max_raw + (1 << fmt.width))
            frac = rng.choice([0.0, 0.5, -0.5, 0.25, 0.75, -0.25, rng.random()])
            vals.append((code + frac) * lsb)
        elif kind < 0.7:  # anywhere in a range around the format's range
            vals.append(rng.uniform(fmt.min_value * 1.5 - lsb, fmt.max_value * 1.5 + lsb))
        elif kind < 0.85:  # far out of range or tiny
            vals.append(rng.choice([-1, 1]) * rng.random() * 2.0 ** rng.randint(-40, 80))
        else:  # a random mantissa at the LSB's scale
            vals.append(
                rng.choice([-1, 1])
                * rng.getrandbits(53)
                * 2.0 ** (-fmt.frac_bits - 53 + rng.randint(0, fmt.width + 2))
            )
    return vals[:n]


def _double_bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def _bits(fmt: FixedType, code: int) -> int:
    return int(code) & ((1 << fmt.width) - 1)


@dataclass
class _Harness:
    funcs: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    stdin: list[str] = field(default_factory=list)
    expected: list[int] = field(default_factory=list)

    def add(self, func: str, lines: list[str], expected: list[int]) -> None:
        self.calls.append(func)
        self.stdin.extend(lines)
        self.expected.extend(expected)


_PRELUDE = r"""
#include <cstdio>
#include <cstring>
#include "ap_fixed.h"
typedef unsigned long long u64;
static u64 rd() {
  u64 v;
  if (scanf("%llu", &v) != 1) { fprintf(stderr, "bad input\n"); exit(3); }
  return v;
}
template <class T> T from_bits(u64 v) { T t; t.V = v; return t; }
template <class T> void out(const T& t) {
  u64 mask = T::width >= 64 ? ~0ull : ((1ull << T::width) - 1);
  printf("%llu\n", (u64)t.V.to_uint64() & mask);
}
template <class T> void out_type(const T&) {
  T all_ones = from_bits<T>(~0ull);  // negative exactly when T is signed
  printf("%llu\n%llu\n%llu\n", (u64)T::width, (u64)(long long)T::iwidth, (u64)(all_ones < 0));
}
template <class S, class D> void conv(int n_double, int n_code) {
  for (int i = 0; i < n_double; ++i) {
    u64 b = rd(); double x; memcpy(&x, &b, 8); D d = x; out(d);
  }
  for (int i = 0; i < n_code; ++i) { S s = from_bits<S>(rd()); D d = s; out(d); }
}
template <class A, class B> void arith(int n) {
  A a0 = 0; B b0 = 0; out_type(a0 + b0); out_type(a0 - b0); out_type(a0 * b0);
  for (int i = 0; i < n; ++i) {
    A a = from_bits<A>(rd()); B b = from_bits<B>(rd()); out(a + b); out(a - b); out(a * b);
  }
}
template <class A, class B, class ACC> void acc(int n, int len) {
  for (int i = 0; i < n; ++i) {
    ACC s = from_bits<ACC>(rd());
    for (int k = 0; k < len; ++k) {
      A a = from_bits<A>(rd()); B b = from_bits<B>(rd()); s += a * b;
    }
    out(s);
  }
}
template <class A, class B, class P, class ACC> void acc_p(int n, int len) {
  for (int i = 0; i < n; ++i) {
    ACC s = from_bits<ACC>(rd());
    for (int k = 0; k < len; ++k) {
      A a = from_bits<A>(rd()); B b = from_bits<B>(rd()); P p = a * b; s += p;
    }
    out(s);
  }
}
"""


def _build_cases() -> _Harness:
    rng = random.Random(SEED)
    h = _Harness()
    for _ in range(N_CONV_PAIRS):
        s = _random_format(rng, 64 if rng.random() < 0.2 else 40)
        d = _random_format(rng, 64 if rng.random() < 0.25 else 40)
        if rng.random() < 0.3:  # same integer bits: rounding carries that overflow
            d = FixedType(
                d.width,
                s.int_bits + rng.randint(-1, 1),
                d.signed,
                d.rounding,
                d.overflow,
                min(d.sat_bits, d.width),
            )
        xs = _random_doubles(rng, d, N_QUANT_VALUES)
        codes = _random_codes(rng, s, N_CAST_VALUES)
        quant = d.quantize(np.array(xs))
        cast = d.cast(np.array(codes, dtype=np.int64 if s.fits_int64 else object), s)
        h.add(
            f"conv<{s.c_type}, {d.c_type}>({len(xs)}, {len(codes)});",
            [str(_double_bits(x)) for x in xs] + [str(_bits(s, c)) for c in codes],
            [_bits(d, r) for r in quant.tolist() + cast.tolist()],
        )
    for _ in range(N_ARITH_PAIRS):
        a, b = _random_format(rng, 30), _random_format(rng, 30)
        ca, cb = _random_codes(rng, a, N_ARITH_VALUES), _random_codes(rng, b, N_ARITH_VALUES)
        exp: list[int] = []
        for t in (add_type(a, b), sub_type(a, b), mul_type(a, b)):
            exp += [t.width, t.int_bits & ((1 << 64) - 1), int(t.signed)]
        ra, ta = fixed_add(ca, a, cb, b)
        rs, ts = fixed_sub(ca, a, cb, b)
        rm, tm = fixed_mul(ca, a, cb, b)
        lines = []
        for i in range(N_ARITH_VALUES):
            lines.append(f"{_bits(a, ca[i])} {_bits(b, cb[i])}")
            exp += [_bits(ta, ra[i]), _bits(ts, rs[i]), _bits(tm, rm[i])]
        h.add(f"arith<{a.c_type}, {b.c_type}>({N_ARITH_VALUES});", lines, exp)
    for i in range(N_ACC_COMBOS):
        a, b = _random_format(rng, 12), _random_format(rng, 12)
        acc_t = _random_format(rng, 24)
        prod_t = _random_format(rng, 24) if i % 2 else None
        length = rng.randint(2, 6)
        x = np.array([_random_codes(rng, a, length) for _ in range(N_ACC_SEQS)], dtype=np.int64)
        w = np.array(_random_codes(rng, b, length * N_ACC_SEQS), dtype=np.int64)
        w = w.reshape(N_ACC_SEQS, length)
        bias = np.array(_random_codes(rng, acc_t, N_ACC_SEQS), dtype=np.int64)
        expected = [
            int(
                fixed_matmul(
                    x[s : s + 1],
                    a,
                    w[s][:, None],
                    b,
                    acc_t=acc_t,
                    product_t=prod_t,
                    bias_raw=bias[s : s + 1],
                    bias_t=acc_t,
                )[0, 0]
            )
            for s in range(N_ACC_SEQS)
        ]
        lines = []
        for s in range(N_ACC_SEQS):
            lines.append(str(_bits(acc_t, bias[s])))
            lines += [f"{_bits(a, x[s, k])} {_bits(b, w[s, k])}" for k in range(length)]
        if prod_t is None:
            func = f"acc<{a.c_type}, {b.c_type}, {acc_t.c_type}>({N_ACC_SEQS}, {length});"
        else:
            func = (
                f"acc_p<{a.c_type}, {b.c_type}, {prod_t.c_type}, {acc_t.c_type}>"
                f"({N_ACC_SEQS}, {length});"
            )
        h.add(func, lines, [_bits(acc_t, v) for v in expected])
    return h


@pytest.fixture(scope="session")
def harness_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[_Harness, list[int]]:
    """Compile the harness (two translation units in parallel) once per session and run it."""
    h = _build_cases()
    work: Path = tmp_path_factory.mktemp("ap_fixed_harness")
    inc = ap_types_include_dir()
    # The headers assert when a rounding mode reads a bit beyond a narrow source word whose
    # value they then discard; NDEBUG keeps those reads harmless.
    flags = ["g++", "-std=c++17", "-O1", "-w", "-DNDEBUG", f"-I{inc}"]
    half = (len(h.calls) + 1) // 2
    procs = []
    for part, calls in enumerate((h.calls[:half], h.calls[half:])):
        src = work / f"part{part}.cpp"
        body = "\n".join("  " + c for c in calls)
        src.write_text(f"{_PRELUDE}\nvoid part{part}() {{\n{body}\n}}\n")
        procs.append(
            subprocess.Popen(
                [*flags, "-c", str(src), "-o", str(work / f"part{part}.o")],
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
    main = work / "main.cpp"
    main.write_text("void part0();\nvoid part1();\nint main() { part0(); part1(); return 0; }\n")
    exe = work / "harness"
    subprocess.run(
        [*flags, str(main), str(work / "part0.o"), str(work / "part1.o"), "-o", str(exe)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    run = subprocess.run(
        [str(exe)],
        input="\n".join(h.stdin) + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return h, [int(v) for v in run.stdout.split()]


def test_python_matches_ap_fixed_headers_bit_for_bit(harness_run, capsys) -> None:
    h, got = harness_run
    assert len(got) == len(h.expected)
    mismatches = [i for i, (e, g) in enumerate(zip(h.expected, got, strict=True)) if e != g]
    with capsys.disabled():
        print(
            f"\n[ap_fixed differential] {len(h.expected)} results compared, "
            f"{len(mismatches)} mismatches"
        )
    assert not mismatches, f"first mismatching result index {mismatches[:10]}"
