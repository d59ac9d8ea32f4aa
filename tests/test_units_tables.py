"""Interpolated ROM tables: exact interpolation semantics and error bounds from step/format."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.units import tables as T

F = FixedType.parse
PHI0 = 1.0 / math.sqrt(2.0 * math.pi)  # max of the normal density


def _floor_assign(value: Fraction, t: FixedType) -> int:
    """Oracle: AP_TRN + AP_SAT assignment of an exact rational."""
    raw = math.floor(value * Fraction(2) ** t.frac_bits)
    return min(max(raw, t.min_raw), t.max_raw)


def _interp_oracle(tab: T.Table, x_raw: int, x_t: FixedType, out_t: FixedType) -> int:
    """The documented interpolation, on Python rationals."""
    x = Fraction(x_raw) / Fraction(2) ** x_t.frac_bits
    x0 = Fraction(tab.x0_raw) / Fraction(2) ** tab.x_frac_bits
    u = math.floor((x - x0) * Fraction(2) ** tab.x_frac_bits)
    u = min(max(u, 0), (tab.size - 1) << tab.fraction_bits)
    i, frac = divmod(u, 1 << tab.fraction_bits)
    a = int(tab.values[i])
    b = int(tab.values[min(i + 1, tab.size - 1)])
    t = Fraction(frac, 1 << tab.fraction_bits)
    y = (a + (b - a) * t) / Fraction(2) ** tab.fmt.frac_bits
    return _floor_assign(y, out_t)


def test_edge_moe_gelu_delta_rom_pinned() -> None:
    tab = T.gelu_delta_table()
    assert (tab.size, tab.step, tab.x0, tab.x_last) == (177, 1 / 32, 0.0, 5.5)
    assert str(tab.fmt) == "ap_ufixed<22,0>" and tab.fraction_bits == 17
    # Edge-MoE's ROM (src/gelu.cpp) printed as decimals: first and last entries, code sum.
    assert tab.values[:5].tolist() == [0, 63902, 124540, 181923, 236067]
    assert tab.values[-8:].tolist() == [1, 1, 1, 1, 1, 1, 1, 0]
    assert int(tab.values.sum()) == 33548970
    assert not tab.values.flags.writeable


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_interp_matches_rational_definition(x_raw: int) -> None:
    tab = T.gelu_table(F("ap_fixed<20,4>"), x_min=-4.0, x_max=4.0, step_log2=-3,
                       fraction_bits=9)
    x_t, out_t = F("ap_fixed<32,10>"), F("ap_fixed<18,3,AP_TRN,AP_SAT>")
    got = tab.interp(np.array([x_raw]), x_t, out_t)
    assert int(got[0]) == _interp_oracle(tab, x_raw, x_t, out_t)


@given(st.integers(min_value=0, max_value=176))
def test_interp_is_exact_on_grid_points(k: int) -> None:
    tab = T.gelu_delta_table()
    x_t = F("ap_fixed<32,10>")
    x = np.array([k << (x_t.frac_bits - 5)])
    assert tab.interp(x, x_t, tab.fmt).tolist() == [int(tab.values[k])]


def test_interp_clamps_at_both_ends() -> None:
    tab = T.exp_neg_table(F("ap_ufixed<18,1>"), step_log2=-2, t_max=4.0)
    x_t = F("ap_fixed<16,8>")
    x = x_t.quantize(np.array([-3.0, -0.01, 4.0, 4.5, 100.0]))
    got = tab.interp(x, x_t, tab.fmt)
    assert got.tolist() == [tab.values[0]] * 2 + [tab.values[-1]] * 3


def test_interp_counts_output_overflow() -> None:
    tab = T.exp_neg_table(F("ap_ufixed<18,1>"))
    ovf: dict[str, int] = {}
    x_t = F("ap_fixed<16,8>")
    narrow = F("ap_ufixed<8,0,AP_TRN,AP_SAT>")  # cannot hold exp(0) = 1
    out = tab.interp(x_t.quantize(np.array([0.0, 0.0, 3.0])), x_t, narrow, overflow=ovf)
    assert out.tolist()[:2] == [255, 255] and ovf == {"table.exp_neg": 2}


def _bound(tab: T.Table, d2: float, d1: float, out_t: FixedType) -> float:
    """h^2/8 max|f''| + sample rounding (1/2 LSB) + index truncation + output truncation."""
    return (tab.step**2 / 8 * d2 + tab.fmt.lsb / 2 + d1 * 2.0**-tab.x_frac_bits
            + out_t.lsb)


CASES = [
    # builder, float function, max|f''|, max|f'|, input range
    (lambda: T.exp_neg_table(F("ap_ufixed<18,1>")), lambda t: np.exp(-t), 1.0, 1.0, (0, 16)),
    (lambda: T.pow2_neg_table(F("ap_ufixed<18,1>")), lambda t: np.exp2(-t),
     math.log(2) ** 2, math.log(2), (0, 1)),
    (lambda: T.reciprocal_table(F("ap_ufixed<18,1>")), lambda m: 1 / m, 2.0, 1.0, (1, 2)),
    (lambda: T.rsqrt_table(F("ap_ufixed<18,1>")), lambda m: m**-0.5, 0.75, 0.5, (1, 4)),
    (lambda: T.gelu_delta_table(), T.gelu_delta, 2 * PHI0, 0.5, (0, 5.5)),
    (lambda: T.gelu_table(F("ap_fixed<22,4>")), T.gelu_float, 2 * PHI0, 1.13, (-6, 6)),
    (lambda: T.tanh_table(F("ap_ufixed<20,1>")), np.tanh, 0.77, 1.0, (0, 8)),
]


@pytest.mark.parametrize("build, func, d2, d1, span", CASES)
def test_table_error_within_derived_bound(build, func, d2, d1, span) -> None:
    tab = build()
    x_t = F("ap_fixed<32,10>")
    out_t = tab.fmt.with_modes("AP_TRN", "AP_SAT")
    x = x_t.quantize(np.linspace(span[0], span[1], 40001))
    y = out_t.to_float(tab.interp(x, x_t, out_t))
    err = np.abs(y - func(x_t.to_float(x)))
    bound = _bound(tab, d2, d1, out_t)
    assert err.max() <= bound
    assert err.max() > bound / 8  # the bound is not vacuous


def test_edge_moe_gelu_delta_error_about_1e4() -> None:
    tab = T.gelu_delta_table()
    x_t = F("ap_fixed<32,10>")
    x = x_t.quantize(np.linspace(0, 5.5, 200001))
    err = np.abs(tab.fmt.to_float(tab.interp(x, x_t, tab.fmt)) - T.gelu_delta(x_t.to_float(x)))
    assert 9e-5 < err.max() < 1e-4


def test_grid_facts_for_codegen() -> None:
    tab = T.rsqrt_table(F("ap_ufixed<18,1>"), step_log2=-4, fraction_bits=12)
    assert tab.size == 49 and tab.x_frac_bits == 16 and tab.x0_raw == 1 << 16
    assert (tab.index_t.width, tab.index_t.frac_bits) == (6, 0)
    assert str(tab.fraction_t) == "ap_ufixed<12,0>"
    # b - a: ap_fixed<19,2>; (b - a) * t: ap_fixed<31,2>; a + (b - a) * t: ap_fixed<32,3>.
    assert str(tab.product_t) == "ap_fixed<31,2>" and str(tab.sum_t) == "ap_fixed<32,3>"


def test_bad_tables_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="not a multiple"):
        T.gelu_table(F("ap_fixed<20,4>"), x_min=-6 - 2**-12, x_max=6 - 2**-12, fraction_bits=4)
    with pytest.raises(UsageError, match="cannot hold"):
        T.gelu_table(F("ap_ufixed<22,0>"))  # negative and > 1 values
    with pytest.raises(UsageError, match="multiple of the step"):
        T.exp_neg_table(F("ap_ufixed<18,1>"), t_max=10.01)
    with pytest.raises(UsageError, match="step_log2 must lie"):
        T.Table("x", 0, 2, -5, np.array([0, 1]), F("ap_ufixed<8,1>"))


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["ap_fixed<16,4>", "ap_ufixed<12,2,AP_RND,AP_SAT>",
                        "ap_fixed<20,3,AP_RND_CONV,AP_SAT_SYM>", "ap_fixed<10,6,AP_TRN_ZERO>",
                        "ap_fixed<14,2,AP_RND_INF,AP_WRAP,2>", "ap_ufixed<8,8,AP_RND_MIN_INF>"]),
       st.integers(0, 2**31))
def test_kernel_assignment_equals_core_cast(dst_fmt: str, seed: int) -> None:
    from vitaccel.units._ops import assign

    src, dst = F("ap_fixed<40,12>"), F(dst_fmt)
    raw = np.random.default_rng(seed).integers(src.min_raw, src.max_raw, size=5000)
    ovf: dict[str, int] = {}
    got = assign(dst, raw, src, ovf, "r")  # 5000 elements: the numba path
    want, n = dst.cast(raw, src, return_overflow=True)
    np.testing.assert_array_equal(got, want)
    assert ovf.get("r", 0) == n
