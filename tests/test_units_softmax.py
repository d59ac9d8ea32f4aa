"""Softmax variants: sequential definitions bit for bit, order dependence, bounds from formats."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, Overflow, Rounding
from vitaccel.units.softmax import (
    SOFTMAX,
    Base2Softmax,
    OnlineSoftmax,
    RomSoftmax,
    TwoPassSoftmax,
)

# the variants built on ROM/fixed-point datapaths (integer-only ones: test_units_intvariants)
TABLE_VARIANTS = sorted(n for n, c in SOFTMAX.items() if issubclass(c, RomSoftmax))

F = FixedType.parse
X_T = F("ap_fixed<32,10>")

EDGE = {  # the edge-moe preset's internal formats
    "softmax.z": "ap_fixed<32,12>",
    "softmax.exp": "ap_ufixed<18,1>",
    "softmax.sum": "ap_ufixed<32,10>",
    "softmax.recip_table": "ap_ufixed<18,1>",
    "softmax.recip": "ap_ufixed<32,1>",
    "softmax.prob": "ap_ufixed<24,1>",
}
# Narrow formats: the sum keeps fewer fractional bits than exp, so every add rounds.
NARROW = {
    "softmax.z": "ap_fixed<16,6>",
    "softmax.exp": "ap_ufixed<12,1>",
    "softmax.sum": "ap_ufixed<12,5,AP_TRN,AP_SAT>",
    "softmax.recip_table": "ap_ufixed<12,1>",
    "softmax.recip": "ap_ufixed<14,1,AP_TRN,AP_SAT>",
    "softmax.prob": "ap_ufixed<10,1,AP_TRN,AP_SAT>",
}
SMALL_TABLES = {"exp_step_log2": -3, "exp_t_max": 8.0, "recip_step_log2": -4,
                "fraction_bits": 8}


def build(name: str, formats: dict[str, str], **options):
    return SOFTMAX[name].build(lambda role: F(formats[role]), **options)


# ------------------------------------------------------------------ rational oracle
def q(value: Fraction, t: FixedType) -> int:
    """Oracle assignment for AP_TRN/AP_RND with AP_SAT/AP_WRAP."""
    scaled = value * Fraction(2) ** t.frac_bits
    raw = math.floor(scaled + Fraction(1, 2)) if t.rounding is Rounding.RND else math.floor(scaled)
    if t.overflow is Overflow.SAT:
        return min(max(raw, t.min_raw), t.max_raw)
    raw %= 1 << t.width
    return raw - (1 << t.width) if t.signed and raw > t.max_raw else raw


def val(raw: int, t: FixedType) -> Fraction:
    return Fraction(raw) / Fraction(2) ** t.frac_bits


def interp(tab, x: Fraction, out_t: FixedType) -> int:
    u = math.floor((x - val(tab.x0_raw, FixedType(64, 64 - tab.x_frac_bits)))
                   * Fraction(2) ** tab.x_frac_bits)
    u = min(max(u, 0), (tab.size - 1) << tab.fraction_bits)
    i, frac = divmod(u, 1 << tab.fraction_bits)
    a, b = int(tab.values[i]), int(tab.values[min(i + 1, tab.size - 1)])
    return q(val(a, tab.fmt) + val(b - a, tab.fmt) * Fraction(frac, 1 << tab.fraction_bits),
             out_t)


def recip_oracle(sm, s: int) -> int:
    v = max(s, 1)
    e = v.bit_length() - 1
    k = sm.recip_table.x_frac_bits
    m = Fraction(v * 2**k, 2**e) if e <= k else Fraction(v >> (e - k))
    y = interp(sm.recip_table, m / 2**k, sm.recip_table_t)
    scaled = math.floor(val(y, sm.recip_table_t) * Fraction(2) ** (sm.sum_t.frac_bits - e)
                        * Fraction(2) ** sm.recip_t.frac_bits)
    return q(val(scaled, sm.recip_t), sm.recip_t)


def online_oracle(sm: OnlineSoftmax, row: list[int], x_t: FixedType) -> tuple[int, int]:
    """Edge-MoE's running max/sum exactly as the docstring defines it, one key at a time."""
    m, s = row[0], q(Fraction(1), sm.sum_t)
    for x in row[1:]:
        e = val(interp(sm.exp_table, val(abs(x - m), x_t), sm.exp_t), sm.exp_t)
        if x > m:
            s = q(val(s, sm.sum_t) * e, sm.sum_t)
            s = q(val(s, sm.sum_t) + 1, sm.sum_t)
            m = x
        else:
            s = q(val(s, sm.sum_t) + e, sm.sum_t)
    return m, recip_oracle(sm, s)


def two_pass_oracle(sm: TwoPassSoftmax, row: list[int], x_t: FixedType) -> tuple[int, int]:
    m, s = max(row), 0
    for x in row:
        e = val(interp(sm.exp_table, val(m - x, x_t), sm.exp_t), sm.exp_t)
        s = q(val(s, sm.sum_t) + e, sm.sum_t)
    return m, recip_oracle(sm, s)


def base2_oracle(sm: Base2Softmax, row: list[int], x_t: FixedType) -> tuple[int, int]:
    log2e = val(sm.log2e_raw, sm.log2e_t)
    z = [val(q(val(x, x_t) * log2e, sm.z_t), sm.z_t) for x in row]

    def pow2(zk: Fraction, c: int) -> Fraction:
        w = c - zk
        qn = math.floor(w)
        y = val(interp(sm.pow2_table, w - qn, sm.exp_t), sm.exp_t)
        return val(q(Fraction(math.floor(y / 2**qn * 2**sm.exp_t.frac_bits),
                              2**sm.exp_t.frac_bits), sm.exp_t), sm.exp_t)

    m = math.ceil(z[0])
    s = q(pow2(z[0], m), sm.sum_t)
    for zk in z[1:]:
        c = math.ceil(zk)
        if c > m:
            s = q(Fraction(math.floor(val(s, sm.sum_t) / 2 ** (c - m)
                                      * 2**sm.sum_t.frac_bits), 2**sm.sum_t.frac_bits),
                  sm.sum_t)
            m = c
        s = q(val(s, sm.sum_t) + pow2(zk, m), sm.sum_t)
    return m, recip_oracle(sm, s)


ORACLES = {"online": online_oracle, "two_pass": two_pass_oracle, "base2": base2_oracle}

rows = st.lists(st.integers(min_value=-3000, max_value=3000), min_size=1, max_size=9)


@pytest.mark.parametrize("name", TABLE_VARIANTS)
@settings(max_examples=40, deadline=None)
@given(data=st.lists(rows, min_size=1, max_size=3).map(
    lambda rs: [r[:min(map(len, rs))] for r in rs]))
def test_stats_equal_sequential_definition(name: str, data: list[list[int]]) -> None:
    sm = build(name, NARROW, **({} if name == "base2" else SMALL_TABLES))
    x_t = F("ap_fixed<16,6>")
    m, r = sm.stats(np.array(data), x_t)
    expected = [ORACLES[name](sm, row, x_t) for row in data]
    np.testing.assert_array_equal(m, [e[0] for e in expected])
    np.testing.assert_array_equal(r, [e[1] for e in expected])
    p = sm.probs(np.array(data), x_t, m, r)
    np.testing.assert_array_equal(p, sm.forward(np.array(data), x_t))


def test_streaming_order_changes_bits_but_not_the_max() -> None:
    sm = build("online", NARROW, **SMALL_TABLES)
    x_t = F("ap_fixed<16,6>")
    rng = np.random.default_rng(1)
    x = x_t.quantize(rng.normal(0, 2, size=(64, 12)))
    rotated = (np.arange(12)[None, :] + (np.arange(64) % 4)[:, None]) % 12
    m0, r0 = sm.stats(x, x_t)
    m1, r1 = sm.stats(x, x_t, order=rotated)
    m2, r2 = sm.stats(x, x_t, order=np.arange(12)[::-1].copy())
    np.testing.assert_array_equal(m0, m1)
    np.testing.assert_array_equal(m0, m2)
    assert np.count_nonzero(r0 != r1) > 0 and np.count_nonzero(r0 != r2) > 0
    # A row's order is taken in the given rotation: equal to streaming the rotated row.
    rows_rot = np.take_along_axis(x, rotated, axis=-1)
    np.testing.assert_array_equal(sm.stats(rows_rot, x_t)[1], r1)
    # Two-pass: the max is exact and the sum adds exactly here, so order cannot matter.
    tp = build("two_pass", EDGE)
    np.testing.assert_array_equal(tp.stats(x, x_t)[1], tp.stats(x, x_t, order=rotated)[1])


def _exp_err(sm) -> float:
    """Absolute error bound of one exp value: interpolation, sample, index and output LSBs."""
    tab = sm.exp_table
    return tab.step**2 / 8 + tab.fmt.lsb / 2 + 2.0**-tab.x_frac_bits + sm.exp_t.lsb


def _recip_rel_err(sm) -> float:
    """Relative error bound of the reciprocal ROM path on [1, 2] (values >= 1/2)."""
    tab = sm.recip_table
    return 2 * (tab.step**2 / 8 * 2 + tab.fmt.lsb * 1.5 + 2.0**-tab.x_frac_bits)


def test_online_equals_two_pass_within_format_bound() -> None:
    on, tp = build("online", EDGE), build("two_pass", EDGE)
    rng = np.random.default_rng(2)
    n = 64
    x = X_T.quantize(np.concatenate([rng.normal(0, 3, (60, n)),
                                     np.sort(rng.normal(0, 1, (4, n)), axis=1)]))
    p_on, p_tp = on.forward(x, X_T), tp.forward(x, X_T)
    xf = X_T.to_float(x)
    s_true = np.exp(xf - xf.max(axis=1, keepdims=True)).sum(axis=1)
    # c_j: how many times the running max rises after key j (each rescale multiplies term j).
    prefix = np.maximum.accumulate(xf, axis=1)
    rises = np.concatenate([np.zeros((x.shape[0], 1), bool), prefix[:, 1:] > prefix[:, :-1]],
                           axis=1)
    later_rises = rises[:, ::-1].cumsum(axis=1)[:, ::-1] - rises
    de, ls = _exp_err(on), on.sum_t.lsb
    e_on = de * (later_rises + 1).sum(axis=1) + (2 * rises.sum(axis=1) + n) * ls
    e_tp = n * de
    s_lo = np.maximum(1.0, s_true - np.maximum(e_on, e_tp))
    bound = ((e_on + e_tp) / s_lo**2 + 2 * (_recip_rel_err(on) / s_lo + on.recip_t.lsb)
             + on.prob_t.lsb)
    diff = np.abs(on.out_t.to_float(p_on) - tp.out_t.to_float(p_tp)).max(axis=1)
    assert np.all(diff <= bound)
    assert diff.max() > 0  # the two variants do differ


@pytest.mark.parametrize("name", ["two_pass", "online"])
def test_probabilities_sum_to_one_within_bound(name: str) -> None:
    sm = build(name, EDGE)
    rng = np.random.default_rng(3)
    n = 197
    x = X_T.quantize(rng.normal(0, 4, size=(3, 8, n)))
    total = sm.out_t.to_float(sm.forward(x, X_T)).sum(axis=-1)
    # sum(p) = sum floor(e_k r) and s r = 1 +- (recip error): for an exactly summed two-pass.
    bound = _recip_rel_err(sm) + n * sm.recip_t.lsb + n * sm.prob_t.lsb
    if name == "online":  # rescaling adds the per-rescale exp error relative to the sum
        bound += n * _exp_err(sm)
    assert np.all(np.abs(total - 1) <= bound)


@pytest.mark.parametrize("name, tol", [("online", 5e-4), ("two_pass", 5e-4), ("base2", 1e-3)])
def test_close_to_float_softmax(name: str, tol: float) -> None:
    sm = build(name, EDGE)
    rng = np.random.default_rng(4)
    x = X_T.quantize(rng.normal(0, 3, size=(2, 3, 50, 50)))
    p = sm.out_t.to_float(sm.forward(x, X_T))
    assert np.abs(p - sm.reference(X_T.to_float(x))).max() < tol


def test_golden_online_edge_moe() -> None:
    sm = build("online", EDGE)
    x = X_T.quantize(np.array([[0.5, -1.25, 3.0, 2.75, -8.0, 3.0],
                               [10.0, 0.0, -0.03125, 9.96875, 4.5, -20.0]]))
    got = sm.forward(x, X_T, order=np.array([5, 0, 1, 2, 3, 4]))
    np.testing.assert_array_equal(got, GOLDEN_ONLINE)


# p = code * 2**-23; row 0 in float: 0.02855, 0.00496, 0.34781, 0.27087, 0.000005, 0.34781.
GOLDEN_ONLINE = np.array([
    [239490, 41625, 2917600, 2272229, 44, 2917600],
    [4250816, 194, 194, 4120021, 17383, 0],
])


def test_overflow_counts_per_role() -> None:
    fm = dict(NARROW, **{"softmax.sum": "ap_ufixed<6,3,AP_TRN,AP_SAT>"})
    sm = build("online", fm, **SMALL_TABLES)
    x_t = F("ap_fixed<16,6>")
    ovf: dict[str, int] = {}
    sm.forward(np.zeros((2, 20), dtype=np.int64), x_t, overflow=ovf)
    assert ovf.get("softmax.sum", 0) > 0
    assert set(ovf) <= set(sm.ROLES) | {"softmax.recip_table"}


def test_registry_roles_and_build_errors() -> None:
    assert set(SOFTMAX) == {"online", "two_pass", "base2", "ibert", "ivit"}
    assert OnlineSoftmax.ROLES == ("softmax.exp", "softmax.sum", "softmax.recip_table",
                                   "softmax.recip", "softmax.prob")
    assert Base2Softmax.ROLES[0] == "softmax.z"
    with pytest.raises(UsageError, match="unknown option 'exp_size'"):
        build("online", EDGE, exp_size=3)
    with pytest.raises(UsageError, match="must give a FixedType"):
        OnlineSoftmax.build(lambda role: "ap_fixed<8,2>")
    sm = build("online", EDGE)
    with pytest.raises(UsageError, match="permutation"):
        sm.stats(np.zeros((2, 4), np.int64), X_T, order=np.array([0, 1, 1, 2]))
    with pytest.raises(UsageError, match="integer codes"):
        sm.stats(np.zeros((2, 4)), X_T)
    assert sm.exp_table.size == 513 and sm.recip_table.size == 65
    assert sm.out_t == F(EDGE["softmax.prob"])


SUM_FORMATS = ["ap_ufixed<12,5,AP_TRN,AP_SAT>", "ap_ufixed<10,3>", "ap_fixed<14,6,AP_RND,AP_SAT>",
               "ap_ufixed<12,4,AP_RND_CONV,AP_SAT_ZERO>", "ap_fixed<12,4,AP_RND_ZERO,AP_WRAP_SM>"]


@pytest.mark.parametrize("sum_fmt", SUM_FORMATS)
def test_running_sum_kernel_equals_numpy_loop(sum_fmt: str) -> None:
    from vitaccel.units._running import running_sum

    sum_t, term_t = F(sum_fmt), F("ap_ufixed<12,1>")
    rng = np.random.default_rng(5)
    term = rng.integers(0, 2**12, size=(300, 16))
    new = rng.random((300, 16)) < 0.3
    rshift = rng.integers(0, 3, size=(300, 16)) * (rng.random((300, 16)) < 0.2)
    s0 = rng.integers(0, sum_t.max_raw + 1, size=300)
    results = []
    for use_kernel in (True, False):
        ovf: dict[str, int] = {}
        s = running_sum(s0, 1, term, term_t, sum_t, new=new, rshift=rshift, overflow=ovf,
                        use_kernel=use_kernel)
        results.append((s, ovf))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1] and results[0][1]["softmax.sum"] > 0
