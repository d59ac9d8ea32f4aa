"""LayerNorm variants: rational oracle bit for bit, rsqrt range reduction, bounds vs float."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, Overflow, Rounding
from vitaccel.units.layernorm import (
    LAYERNORM,
    FixedLayerNorm,
    IsqrtLayerNorm,
    RsqrtTableLayerNorm,
)

# the variants built on ROM/fixed-point datapaths (integer-only ones: test_units_intvariants)
TABLE_VARIANTS = sorted(n for n, c in LAYERNORM.items() if issubclass(c, FixedLayerNorm))

F = FixedType.parse
EDGE = {  # the edge-moe preset's internal formats
    "layernorm.mean": "ap_fixed<32,10>",
    "layernorm.centered": "ap_fixed<32,10>",
    "layernorm.var": "ap_ufixed<40,20>",
    "layernorm.rsqrt_table": "ap_ufixed<18,1>",
    "layernorm.rsqrt": "ap_ufixed<32,11>",
    "layernorm.sqrt": "ap_ufixed<32,12>",
    "layernorm.norm": "ap_fixed<32,8>",
    "layernorm.out": "ap_fixed<32,10>",
}
TINY = dict(EDGE, **{  # fractional bits for variances down to ~1e-7
    "layernorm.centered": "ap_fixed<32,4>",
    "layernorm.var": "ap_ufixed<44,4>",
    "layernorm.rsqrt": "ap_ufixed<32,14>",
    "layernorm.sqrt": "ap_ufixed<32,4>",
})
NARROW = {
    "layernorm.mean": "ap_fixed<20,8,AP_RND,AP_WRAP>",
    "layernorm.centered": "ap_fixed<20,8,AP_RND,AP_SAT>",
    "layernorm.var": "ap_ufixed<24,10,AP_TRN,AP_SAT>",
    "layernorm.rsqrt_table": "ap_ufixed<14,1>",
    "layernorm.rsqrt": "ap_ufixed<24,10,AP_TRN,AP_SAT>",
    "layernorm.sqrt": "ap_ufixed<20,8>",
    "layernorm.norm": "ap_fixed<20,6,AP_TRN,AP_SAT>",
    "layernorm.out": "ap_fixed<20,8,AP_RND,AP_SAT>",
}
X_T, G_T = F("ap_fixed<32,10>"), F("ap_fixed<16,5>")


def build(name: str, formats: dict[str, str], **options):
    return LAYERNORM[name].build(lambda role: F(formats[role]), **options)


# ------------------------------------------------------------------ rational oracle
def q(value: Fraction, t: FixedType) -> int:
    scaled = value * Fraction(2) ** t.frac_bits
    raw = math.floor(scaled + Fraction(1, 2)) if t.rounding is Rounding.RND else math.floor(scaled)
    if t.overflow is Overflow.SAT:
        return min(max(raw, t.min_raw), t.max_raw)
    raw %= 1 << t.width
    return raw - (1 << t.width) if t.signed and raw > t.max_raw else raw


def v_(raw: int, t: FixedType) -> Fraction:
    return Fraction(raw) / Fraction(2) ** t.frac_bits


def interp(tab, x: Fraction, out_t: FixedType) -> int:
    u = math.floor((x - Fraction(tab.x0_raw, 2**tab.x_frac_bits)) * 2**tab.x_frac_bits)
    u = min(max(u, 0), (tab.size - 1) << tab.fraction_bits)
    i, frac = divmod(u, 1 << tab.fraction_bits)
    a, b = int(tab.values[i]), int(tab.values[min(i + 1, tab.size - 1)])
    return q(v_(a, tab.fmt) + v_(b - a, tab.fmt) * Fraction(frac, 1 << tab.fraction_bits),
             out_t)


def rsqrt_oracle(ln, v: int) -> int:
    fv, r_t = ln.var_t.frac_bits, ln.rsqrt_t
    if isinstance(ln, IsqrtLayerNorm):
        fs = ln.sqrt_t.frac_bits
        s = q(Fraction(math.isqrt(math.floor(Fraction(max(v, 0)) * Fraction(2) ** (2 * fs - fv))),
                       2**fs), ln.sqrt_t)
        return q(Fraction((1 << (r_t.frac_bits + fs)) // max(s, 1), 2**r_t.frac_bits), r_t)
    big = max(v, 1)
    e = big.bit_length() - 1 - fv
    e2 = e - (e % 2)
    k, tab_t, n_t = ln.table.x_frac_bits, ln.rsqrt_table_t, ln.newton_t
    m = Fraction(math.floor(Fraction(big) * Fraction(2) ** (k - fv - e2)), 2**k)
    y = v_(interp(ln.table, m, tab_t), tab_t)
    for _ in range(ln.newton_steps):
        y2 = v_(q(y * y, n_t), n_t)
        h = v_(q(m * y2, n_t), n_t)
        y = v_(q(y * (3 - h) / 2, tab_t), tab_t)
    return q(Fraction(math.floor(y * Fraction(2) ** (r_t.frac_bits - e2 // 2)),
                      2**r_t.frac_bits), r_t)


def layernorm_oracle(ln, x, x_t, g, g_t, b, b_t) -> list[int]:
    d = len(x)
    xs = [v_(c, x_t) for c in x]
    mean = v_(q(sum(xs) / d, ln.mean_t), ln.mean_t)
    xc = [v_(q(xi - mean, ln.centered_t), ln.centered_t) for xi in xs]
    sq = [v_(q(c * c, ln.var_t), ln.var_t) for c in xc]
    var = v_(q(sum(sq) / d, ln.var_t), ln.var_t)
    v = q(var + v_(ln.eps_raw, ln.var_t), ln.var_t)
    r = v_(rsqrt_oracle(ln, v), ln.rsqrt_t)
    out = []
    for c, gi, bi in zip(xc, g, b, strict=True):
        xn = v_(q(c * r, ln.norm_t), ln.norm_t)
        out.append(q(xn * v_(gi, g_t) + v_(bi, b_t), ln.out_t))
    return out


@pytest.mark.parametrize("name", TABLE_VARIANTS)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_equals_rational_definition(name: str, data) -> None:
    x_t, g_t = F("ap_fixed<16,6>"), F("ap_fixed<12,4>")
    ln = build(name, NARROW, **({"step_log2": -3, "fraction_bits": 10}
                                if name == "rsqrt_table" else {}), eps=1e-3)
    d = data.draw(st.integers(1, 12))
    scale = data.draw(st.sampled_from([4, 64, 2048, 2**15]))
    codes = st.integers(-scale, scale - 1)
    x = np.array(data.draw(st.lists(st.lists(codes, min_size=d, max_size=d), min_size=1,
                                    max_size=3)))
    g = np.array(data.draw(st.lists(st.integers(-2048, 2047), min_size=d, max_size=d)))
    b = np.array(data.draw(st.lists(st.integers(-2048, 2047), min_size=d, max_size=d)))
    got = ln.forward(x, x_t, g, g_t, b, g_t)
    expected = [layernorm_oracle(ln, row.tolist(), x_t, g.tolist(), g_t, b.tolist(), g_t)
                for row in x]
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", TABLE_VARIANTS)
def test_rsqrt_over_wide_variance_range(name: str) -> None:
    ln = build(name, TINY)
    v = np.unique(ln.var_t.quantize(np.geomspace(2.0**-24, 15.0, 4000)))
    r = ln.rsqrt_t.to_float(ln.rsqrt(v))
    exact = 1 / np.sqrt(ln.var_t.to_float(v))
    if name == "rsqrt_table":  # table + one Newton step: 1.5 eps0^2 plus the formats' LSBs
        tab = ln.table
        eps0 = 2 * (tab.step**2 / 8 * 0.75 + 1.5 * tab.fmt.lsb + 2.0**-tab.x_frac_bits)
        rel = 1.5 * eps0**2 + 4 * ln.rsqrt_table_t.lsb + 2.0**-tab.x_frac_bits
    else:  # truncated root (1 LSB of sqrt_t) then a truncating division
        rel = ln.sqrt_t.lsb * exact
    bound = rel * exact + ln.rsqrt_t.lsb
    assert np.all(np.abs(r - exact) <= bound)


def _float_case(seed: int, rows: int, d: int, loc: float, scale: float):
    rng = np.random.default_rng(seed)
    x = X_T.quantize(rng.normal(loc, scale, (rows, d)))
    g = G_T.quantize(rng.normal(1.0, 0.3, d))
    b = G_T.quantize(rng.normal(0.0, 0.3, d))
    return x, g, b


def _rsqrt_path_rel(ln, v: np.ndarray) -> np.ndarray:
    """Relative error bound of the rsqrt datapath on an exact variance code."""
    if isinstance(ln, IsqrtLayerNorm):
        return ln.sqrt_t.lsb / np.sqrt(v)
    tab = ln.table
    eps0 = 2 * (tab.step**2 / 8 * 0.75 + 1.5 * tab.fmt.lsb + 2.0**-tab.x_frac_bits)
    return np.full_like(v, 1.5 * eps0**2 + 4 * ln.rsqrt_table_t.lsb + 2.0**-tab.x_frac_bits)


def _derived_bound(ln, xf: np.ndarray, gf: np.ndarray) -> np.ndarray:
    """Worst-case |y - float LayerNorm| from the formats' LSBs, per element."""
    mu = xf.mean(axis=-1, keepdims=True)
    xc = np.abs(xf - mu)
    v = ((xf - mu) ** 2).mean(axis=-1, keepdims=True) + ln.eps
    d_xc = ln.mean_t.lsb + ln.centered_t.lsb
    lv = ln.var_t.lsb
    d_v = (2 * xc * d_xc + d_xc**2 + lv).mean(axis=-1, keepdims=True) + 2.5 * lv
    v_lo = np.maximum(v - d_v, lv)
    r = 1 / np.sqrt(v)
    rel = 0.5 * d_v / v_lo * np.sqrt(v / v_lo) + _rsqrt_path_rel(ln, v) + ln.rsqrt_t.lsb / r
    d_xn = xc * r * rel * 1.01 + r * d_xc + ln.norm_t.lsb
    return np.abs(gf) * d_xn + ln.out_t.lsb


@pytest.mark.parametrize("name", TABLE_VARIANTS)
@pytest.mark.parametrize("formats, d, loc, scale", [
    (EDGE, 192, 0.5, 1.0),     # the Edge-MoE dims
    (EDGE, 768, 3.0, 20.0),    # variance ~400 > 1, large D
    (EDGE, 1024, -1.0, 0.05),  # variance < 1: var_t's 20 fractional bits dominate
    (TINY, 1024, 0.25, 1e-3),  # variance ~1e-6, same order as eps
])
def test_float_layernorm_within_derived_bound(name, formats, d, loc, scale) -> None:
    ln = build(name, formats)
    x, g, b = _float_case(d, 6, d, loc, scale)
    ovf: dict[str, int] = {}
    y = ln.out_t.to_float(ln.forward(x, X_T, g, G_T, b, G_T, overflow=ovf))
    xf, gf = X_T.to_float(x), G_T.to_float(g)
    ref = ln.reference(xf, gf, G_T.to_float(b), ln.eps)
    assert ovf == {}
    err, bound = np.abs(y - ref), _derived_bound(ln, xf, gf)
    assert np.all(err <= bound)
    assert err.max() > bound.max() / 50  # not vacuous


@pytest.mark.parametrize("name", TABLE_VARIANTS)
def test_constant_rows_give_beta(name: str) -> None:
    ln = build(name, EDGE)
    x, g, b = _float_case(7, 3, 768, 0.0, 1.0)
    x = np.repeat(X_T.quantize(np.array([[5.0], [-300.0], [0.0]])), 768, axis=1)
    y = ln.forward(x, X_T, g, G_T, b, G_T)
    np.testing.assert_array_equal(y, np.broadcast_to(ln.out_t.cast(b, G_T), y.shape))


@pytest.mark.parametrize("name", TABLE_VARIANTS)
def test_golden(name: str) -> None:
    ln = build(name, EDGE)
    x = X_T.quantize(np.array([[1.0, -2.0, 0.5, 3.25, 0.0, -1.5, 7.0, 2.0]]))
    g = G_T.quantize(np.array([1.0, 0.5, -1.0, 2.0, 1.0, 1.0, 0.25, 1.0]))
    b = G_T.quantize(np.array([0.0, 0.125, 0.0, -1.0, 0.5, 0.0, 0.0, 0.0]))
    np.testing.assert_array_equal(ln.forward(x, X_T, g, G_T, b, G_T)[0], GOLDEN[name])


# Codes of 2**-22; the float LayerNorm * 2**22 rounds to -438376, -2032906, 1217711, 1942961,
# 100106, -4335052, 2228412, 1120294.
GOLDEN = {
    "rsqrt_table": [-438377, -2032909, 1217712, 1942967, 100103, -4335057, 2228413, 1120295],
    "isqrt": [-438376, -2032905, 1217711, 1942959, 100106, -4335051, 2228411, 1120294],
}


def test_registry_roles_and_errors() -> None:
    assert set(LAYERNORM) == {"rsqrt_table", "isqrt", "ivit"}
    assert RsqrtTableLayerNorm.ROLES == (
        "layernorm.mean", "layernorm.centered", "layernorm.var", "layernorm.rsqrt_table",
        "layernorm.rsqrt", "layernorm.norm", "layernorm.out")
    assert "layernorm.sqrt" in IsqrtLayerNorm.ROLES
    ln = build("rsqrt_table", EDGE)
    assert ln.table.size == 49 and ln.newton_t == F("ap_ufixed<19,2>")
    x = np.zeros((2, 8), np.int64)
    with pytest.raises(UsageError, match="gamma: expected shape"):
        ln.forward(x, X_T, np.zeros(7, np.int64), G_T, np.zeros(8, np.int64), G_T)
    with pytest.raises(UsageError, match="unknown option"):
        build("isqrt", EDGE, newton_steps=2)
    with pytest.raises(UsageError, match="exceeds"):
        build("isqrt", dict(EDGE, **{"layernorm.sqrt": "ap_ufixed<40,2>"}))
