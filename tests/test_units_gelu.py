"""GELU variants: Edge-MoE's datapath bit for bit, error bounds over the full input range."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.units.gelu import GELU, DeltaTableGelu, TableGelu, TanhGelu
from vitaccel.units.tables import gelu_float

# the variants built on ROM/fixed-point datapaths (integer-only ones: test_units_intvariants)
TABLE_VARIANTS = sorted(n for n, c in GELU.items() if issubclass(c, TableGelu))

F = FixedType.parse
X_T = F("ap_fixed<32,10>")  # Edge-MoE's fm_t
PHI0 = 1.0 / math.sqrt(2.0 * math.pi)
FORMATS = {
    "delta_table": {"gelu.table": "ap_ufixed<22,0>", "gelu.out": "ap_fixed<32,10>"},
    "lut": {"gelu.lut": "ap_fixed<22,4>", "gelu.out": "ap_fixed<32,10>"},
    "tanh": {"gelu.poly": "ap_fixed<32,12>", "gelu.table": "ap_ufixed<20,1>",
             "gelu.out": "ap_fixed<32,10>"},
}


def build(name: str, **options):
    return GELU[name].build(lambda role: F(FORMATS[name][role]), **options)


def _phi_tail(t: float) -> float:
    return 0.5 * math.erfc(t / math.sqrt(2.0))


def edge_moe_gelu(g: DeltaTableGelu, x_raw: int) -> int:
    """Edge-MoE's gelu() (src/gelu.cpp) on rationals: fm_t = ap_fixed<32,10>, ROM 22 bits."""
    x = Fraction(x_raw, 2**22)
    relu = max(x, Fraction(0))
    xa = abs(x)
    if xa >= Fraction(11, 2):
        return int(relu * 2**22)
    index_exact = xa / Fraction(1, 32)
    index = math.floor(index_exact)
    t = index_exact - index  # fits ap_ufixed<22,0> exactly (17 bits)
    a, b = (Fraction(int(v), 2**22) for v in g.table.values[index:index + 2])
    delta = Fraction(math.floor((a + t * (b - a)) * 2**22), 2**22)  # fm_frac_t, AP_TRN
    return int((relu - delta) * 2**22)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.integers(X_T.min_raw, X_T.max_raw),
                 st.integers(-6 * 2**22, 6 * 2**22)))
def test_delta_table_is_edge_moe_bit_for_bit(x_raw: int) -> None:
    g = build("delta_table")
    assert int(g.forward(np.array([x_raw]), X_T)[0]) == edge_moe_gelu(g, x_raw)


def _full_range() -> np.ndarray:
    x = np.concatenate([np.linspace(-8, 8, 160001), np.linspace(-512, 511.9, 4001)])
    return np.concatenate([X_T.quantize(x), [X_T.min_raw, X_T.max_raw, 0, 1, -1]])


def _table_bound(g, d2: float, d1: float) -> float:
    tab = g.table
    return (tab.step**2 / 8 * d2 + tab.fmt.lsb / 2 + d1 * 2.0**-tab.x_frac_bits
            + g.table_t.lsb + g.out_t.lsb)


def test_delta_table_error_bound_full_range() -> None:
    g = build("delta_table")
    x = _full_range()
    err = np.abs(g.out_t.to_float(g.forward(x, X_T)) - gelu_float(X_T.to_float(x)))
    bound = _table_bound(g, 2 * PHI0, 0.5) + 5.5 * _phi_tail(5.5)  # + the relu tail
    assert err.max() <= bound < 1e-4
    assert err.max() > 0.9e-4  # Edge-MoE's "max error ~1e-4"


def test_lut_error_bound_full_range() -> None:
    g = build("lut")
    x = _full_range()
    err = np.abs(g.out_t.to_float(g.forward(x, X_T)) - gelu_float(X_T.to_float(x)))
    bound = _table_bound(g, 2 * PHI0, 1.13) + 6.0 * _phi_tail(6.0)
    assert bound / 4 < err.max() <= bound


def test_tanh_error_bound_full_range() -> None:
    g = build("tanh")
    x = _full_range()
    xf = X_T.to_float(x)
    y = g.out_t.to_float(g.forward(x, X_T))
    c1, c2 = math.sqrt(2 / math.pi), 0.044715
    form = 0.5 * xf * (1 + np.tanh(c1 * (xf + c2 * xf**3)))
    # Propagate the polynomial's truncations (LSB L) and the rounded constants into u.
    lp, lc = g.poly_t.lsb, g.const_t.lsb
    c1q, c2q = g.c1_raw * lc, g.c2_raw * lc
    xc = np.clip(np.abs(xf), 0, g.poly_clip)
    d_x3 = xc * lp + lp
    d_v = c2q * d_x3 + abs(c2q - c2) * xc**3 + lp
    d_u = c1q * d_v + abs(c1q - c1) * (xc + c2 * xc**3) + lp
    d_tanh = _table_bound(g, 0.77, 1.0) - g.out_t.lsb + (1 - math.tanh(g.tanh_t_max))
    bound = (np.abs(form - gelu_float(xf)) + 0.5 * np.abs(xf) * (d_tanh + d_u)
             + g.out_t.lsb)
    err = np.abs(y - gelu_float(xf))
    assert np.all(err <= bound)
    assert 3e-4 < err.max() < 6e-4  # dominated by the tanh form itself


@pytest.mark.parametrize("name", TABLE_VARIANTS)
def test_saturation_regions(name: str) -> None:
    g = build(name)
    big = X_T.quantize(np.array([8.0, 100.0, 511.5]))
    np.testing.assert_array_equal(g.forward(big, X_T), big)  # GELU(x) = x to 2^-22 here
    neg = g.forward(np.array([X_T.min_raw, X_T.quantize(-100.0)]), X_T)
    assert np.all(np.abs(neg) <= 1)  # GELU(x) ~ 0 (the tanh form may truncate to -1 LSB)


@pytest.mark.parametrize("name", TABLE_VARIANTS)
def test_golden(name: str) -> None:
    g = build(name)
    x = X_T.quantize(np.array([-3.0, -1.0, -0.25, 0.0, 0.1, 0.5, 1.0, 2.0, 5.49, 6.0]))
    np.testing.assert_array_equal(g.forward(x, X_T), GOLDEN[name])


# Codes of 2**-22; float GELU * 2**22 rounds to -16986, -665448, -420787, 0, 226420, 1450102,
# 3528856, 8197766, 23026728, 25165824.
GOLDEN = {
    "delta_table": [-16986, -665448, -420787, 0, 226679, 1450102, 3528856, 8197766, 23026728,
                    25165824],
    "lut": [-16992, -665456, -420784, 0, 226672, 1450096, 3528848, 8197760, 23026720, 25165824],
    "tanh": [-15276, -666264, -420817, 0, 226415, 1449998, 3528040, 8198096, 23026728, 25165824],
}


def test_overflow_counted_under_roles() -> None:
    g = GELU["delta_table"].build(
        lambda role: F({"gelu.table": "ap_ufixed<22,0>",
                        "gelu.out": "ap_fixed<8,3,AP_TRN,AP_SAT>"}[role]))
    ovf: dict[str, int] = {}
    out = g.forward(X_T.quantize(np.array([1.0, 10.0, 20.0])), X_T, overflow=ovf)
    assert ovf == {"gelu.out": 2} and out.tolist()[1:] == [127, 127]


def test_registry_roles_and_errors() -> None:
    assert set(GELU) == {"delta_table", "lut", "tanh", "ibert", "ivit"}
    assert DeltaTableGelu.ROLES == ("gelu.table", "gelu.out")
    assert TanhGelu.ROLES == ("gelu.poly", "gelu.table", "gelu.out")
    g = build("delta_table")
    assert g.table.size == 177 and g.out_t == X_T
    assert GELU["lut"].ROLES == ("gelu.lut", "gelu.out")
    with pytest.raises(UsageError, match="cannot hold"):
        GELU["lut"].build(lambda role: F({"gelu.lut": "ap_ufixed<22,0>",
                                          "gelu.out": "ap_fixed<32,10>"}[role]))
    with pytest.raises(UsageError, match="unknown option"):
        build("tanh", t_max=3.0)
    with pytest.raises(UsageError, match="integer codes"):
        g.forward(np.array([0.5]), X_T)
