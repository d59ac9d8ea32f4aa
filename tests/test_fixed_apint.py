"""ap_int / ap_uint against the real headers: assignment truncates toward zero, then wraps."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from vitaccel.fixed import FixedType, ap_types_include_dir

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")

DOUBLES = [-2.5, 2.5, -2.75, 9.7, -9.7, 130.25, -129.5, 0.99, -0.99, 255.5, 17.9, -0.0]
SOURCE = ("ap_fixed<12,6>", [-130, -97, -64, -1, 0, 1, 63, 97, 2047, -2048])
TYPES = ["ap_int<8>", "ap_uint<8>", "ap_int<4>", "ap_uint<4>", "ap_int<3>"]


def test_ap_int_quantize_and_cast_match_the_headers(tmp_path):
    src_t = FixedType.parse(SOURCE[0])
    lines = ["#include <ap_fixed.h>", "#include <ap_int.h>", "#include <cstdio>", "int main() {"]
    for t in TYPES:
        for d in DOUBLES:
            lines.append(f"  {{ {t} v = {d!r}; printf(\"%lld\\n\", (long long)v.to_int64()); }}")
        for code in SOURCE[1]:
            lines.append(f"  {{ {SOURCE[0]} f; f.range() = {code & 0xFFF}; {t} v = f; "
                         f"printf(\"%lld\\n\", (long long)v.to_int64()); }}")
    lines.append("}")
    (tmp_path / "t.cpp").write_text("\n".join(lines))
    subprocess.run(["g++", "-std=c++17", "-O0", "-isystem", str(ap_types_include_dir()),
                    str(tmp_path / "t.cpp"), "-o", str(tmp_path / "t")], check=True)
    got = [int(v) for v in subprocess.run([str(tmp_path / "t")], check=True,
                                          capture_output=True, text=True).stdout.split()]
    expected = []
    for t in TYPES:
        fmt = FixedType.parse(t)
        assert str(fmt) == t
        expected += fmt.quantize(np.array(DOUBLES)).tolist()
        expected += fmt.cast(np.array(SOURCE[1]), src_t).tolist()
    assert got == expected
