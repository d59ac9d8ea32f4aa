"""The fused softmax kernels equal the vectorised definition ``probs(stats(scores))`` bit for
bit, with the same overflow counts per role, for every ROM variant, format and key order."""

from __future__ import annotations

import re

import numpy as np
import pytest
from _fused_cases import specialising
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, Overflow, Rounding
from vitaccel.fixed._assign import assign_one, assign_params
from vitaccel.fixed._kernels import cast_one
from vitaccel.units._softmax_kernels import run
from vitaccel.units.attention import key_order
from vitaccel.units.softmax import SOFTMAX, _order_rows

F = FixedType.parse
ROM_VARIANTS = ("online", "two_pass", "base2")
SMALL_TABLES = {"recip_step_log2": -4, "fraction_bits": 8}
EXP_TABLES = {"exp_step_log2": -3, "exp_t_max": 8.0}
NARROW = {
    "softmax.z": "ap_fixed<12,4,AP_TRN,AP_SAT>",
    "softmax.exp": "ap_ufixed<12,1>",
    "softmax.sum": "ap_ufixed<8,3,AP_TRN,AP_SAT>",
    "softmax.recip_table": "ap_ufixed<12,1>",
    "softmax.recip": "ap_ufixed<14,1>",
    "softmax.prob": "ap_ufixed<10,0,AP_RND,AP_SAT>",
}


def reference(sm, x, x_t, order):
    """The vectorised definition of ``forward`` and its overflow counts."""
    ovf: dict[str, int] = {}
    m, r = sm.stats(x, x_t, order, ovf)
    return sm.probs(x, x_t, m, r, ovf), ovf


def fused(sm, x, x_t, order):
    assert sm._fused_plan(x_t) is not None
    ovf: dict[str, int] = {}
    return sm.forward(x, x_t, order, ovf), ovf


def assert_same(sm, x, x_t, order=None) -> dict[str, int]:
    want, want_ovf = reference(sm, x, x_t, order)
    got, got_ovf = fused(sm, x, x_t, order)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int64 and got.shape == np.shape(x)
    assert got_ovf == want_ovf
    return got_ovf


def assert_same_or_vectorised(sm, x, x_t, order) -> None:
    """The fused path where it applies; elsewhere ``forward`` is the vectorised definition
    itself (the same result or the same error)."""
    if sm._fused_plan(x_t) is not None:
        for role in assert_same(sm, x, x_t, order):
            event(f"overflow {role}")
        return
    event("vectorised path")
    try:
        want, want_ovf = reference(sm, x, x_t, order)
    except UsageError as err:
        with pytest.raises(UsageError, match=re.escape(str(err))):
            sm.forward(x, x_t, order, {})
        return
    ovf: dict[str, int] = {}
    np.testing.assert_array_equal(sm.forward(x, x_t, order, ovf), want)
    assert ovf == want_ovf


# ------------------------------------------------------------------------ strategies
ROUNDINGS = st.sampled_from(list(Rounding))


@st.composite
def fmt(draw, widths, ints, signed=None):
    """A format with any rounding and an overflow mode allowed for its signedness."""
    s = draw(st.booleans()) if signed is None else signed
    modes = [o for o in Overflow if s or o is not Overflow.WRAP_SM]
    w = draw(widths)
    o = draw(st.sampled_from(modes))
    n = draw(st.integers(0, min(w, 3))) if o in (Overflow.WRAP, Overflow.WRAP_SM) else 0
    return FixedType(w, draw(ints), s, draw(ROUNDINGS), o, n)


@st.composite
def variants(draw, name):
    """A ROM softmax variant with drawn formats (tables that cannot hold their samples are
    rejected by the builder and skipped)."""
    def unit(lo: int, hi: int) -> FixedType:  # values in [0, 1]
        return draw(fmt(st.integers(lo, hi), st.integers(0, 2)))

    formats = {
        "softmax.z": draw(fmt(st.integers(8, 36), st.integers(2, 12), signed=True)),
        "softmax.exp": unit(6, 24),
        "softmax.sum": draw(fmt(st.integers(4, 34), st.integers(1, 12))),
        "softmax.recip_table": unit(6, 22),
        "softmax.recip": unit(4, 34),
        "softmax.prob": unit(4, 26),
    }
    opts = draw(st.sampled_from([{}, SMALL_TABLES]))
    if name != "base2":
        opts = {**opts, **draw(st.sampled_from([{}, EXP_TABLES]))}
    try:
        return SOFTMAX[name].build(formats.__getitem__, **opts)
    except UsageError:
        assume(False)


@st.composite
def scores(draw):
    """(x_t, codes (..., N), order) with extremes, ties and every order form."""
    w = draw(st.integers(6, 40))
    x_t = draw(fmt(st.just(w), st.integers(1, min(12, w)), signed=True))
    lead = draw(st.sampled_from([(1,), (3,), (2, 5), (2, 1, 4)]))
    n = draw(st.sampled_from([1, 2, 5, 7, 16]))
    spread = min(draw(st.sampled_from([2, 8, 64])) << x_t.frac_bits, x_t.max_raw)
    pool = [x_t.min_raw, x_t.max_raw, 0, draw(st.integers(-spread, spread))]  # ties
    value = st.one_of(st.integers(-spread, spread), st.sampled_from(pool))
    x = np.array(draw(st.lists(value, min_size=int(np.prod(lead)) * n,
                               max_size=int(np.prod(lead)) * n)), np.int64)
    x = x.reshape(*lead, n)
    kind = draw(st.sampled_from(["none", "one", "query", "row"]))
    perm = st.permutations(range(n)).map(lambda p: np.array(p, np.int64))
    if kind == "none":
        order = None
    elif kind == "one":
        order = draw(perm)
    elif kind == "query":  # one order per index of axis -2, as the attention unit passes
        order = np.stack([draw(perm) for _ in range(lead[-1])])
    else:  # every row its own order (the general broadcast)
        order = np.stack([draw(perm) for _ in range(int(np.prod(lead)))]).reshape(*lead, n)
    return x_t, x, order


# ------------------------------------------------------------------------ equivalence
@settings(max_examples=300, deadline=None)
@given(dst=fmt(st.integers(1, 62), st.integers(-4, 40)), src_width=st.integers(1, 62),
       shift=st.integers(-8, 70), data=st.data())
def test_assign_one_equals_cast_one(dst: FixedType, src_width: int, shift: int, data) -> None:
    dst = data.draw(st.sampled_from([dst, dst.with_modes(Rounding.TRN, Overflow.WRAP, 0)]))
    lim = 1 << (src_width - 1)
    raw = np.int64(data.draw(st.one_of(st.integers(-lim, lim - 1),
                                       st.sampled_from([-lim, lim - 1, 0, -1, 1]))))
    c = assign_params(shift, src_width, dst)
    assert assign_one(raw, c) == cast_one(raw, np.array(c, np.int64))


@pytest.mark.parametrize("name", ROM_VARIANTS)
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_fused_forward_equals_vectorised_definition(name: str, data) -> None:
    sm = data.draw(variants(name))
    x_t, x, order = data.draw(scores())
    assert_same_or_vectorised(sm, x, x_t, order)


@pytest.mark.parametrize("name", ROM_VARIANTS)
def test_overflowing_formats_give_the_same_counts(name: str) -> None:
    opts = SMALL_TABLES if name == "base2" else {**SMALL_TABLES, **EXP_TABLES}
    sm = SOFTMAX[name].build(lambda role: F(NARROW[role]), **opts)
    x_t = F("ap_fixed<16,8>")
    rng = np.random.default_rng(7)
    one_hot = np.where(np.arange(40) == 3, 100.0, -100.0)  # p = 1 overflows prob_t
    x = np.concatenate([np.zeros((4, 40)), rng.normal(0, 20, (4, 40)),
                        np.full((2, 40), 127.0), np.full((1, 40), -128.0), one_hot[None]])
    x = x_t.with_modes(overflow=Overflow.SAT).quantize(x)
    rotated = (np.arange(40)[None, :] + np.arange(12)[:, None]) % 40
    ovf = assert_same(sm, x, x_t, rotated)
    assert ovf.get("softmax.sum", 0) > 0 and ovf.get("softmax.prob", 0) > 0
    if name == "base2":
        assert ovf.get("softmax.z", 0) > 0
    assert set(ovf) <= set(sm.ROLES)


@pytest.mark.parametrize("name", ROM_VARIANTS)
def test_general_and_specialised_compilations_agree(name: str) -> None:
    """The specialised kernel (the plan's parameters as constants, parallel rows) gives the
    general kernel's bits and counts, on formats that saturate, wrap and round."""
    sm = SOFTMAX[name].build(lambda role: F(NARROW[role]), **SMALL_TABLES)
    x_t = F("ap_fixed<16,8>")
    rng = np.random.default_rng(8)
    x = x_t.quantize(np.concatenate([rng.normal(0, 4, (3, 33, 33)),
                                     rng.normal(0, 40, (1, 33, 33)), np.zeros((1, 33, 33))]))
    order = _order_rows(key_order(33, "reordered", 4), x.shape)
    rows = x.reshape(-1, 33)
    plan = sm._fused_plan(x_t)
    general: dict[str, int] = {}
    specialised: dict[str, int] = {}
    with specialising(False):
        want = run(plan, rows, order, general)
    with specialising():
        np.testing.assert_array_equal(run(plan, rows, order, specialised), want)
    assert specialised == general
    assert general.get("softmax.sum", 0) > 0 and len(general) >= 2
    assert_same(sm, x, x_t, key_order(33, "reordered", 4))


@pytest.mark.parametrize("name", ROM_VARIANTS)
def test_attention_shapes_and_preset_formats(name: str) -> None:
    edge = {"softmax.z": "ap_fixed<32,12>", "softmax.exp": "ap_ufixed<18,1>",
            "softmax.sum": "ap_ufixed<32,10>", "softmax.recip_table": "ap_ufixed<18,1>",
            "softmax.recip": "ap_ufixed<32,1>", "softmax.prob": "ap_ufixed<24,1>"}
    sm = SOFTMAX[name].build(lambda role: F(edge[role]))
    x_t = F("ap_fixed<32,10>")
    x = x_t.quantize(np.random.default_rng(9).normal(0, 3, (2, 3, 21, 21)))
    for order in (None, key_order(21, "reordered", 4)):
        assert_same(sm, x, x_t, order)


def test_wide_formats_take_the_vectorised_path() -> None:
    sm = SOFTMAX["online"].build(lambda role: F({**NARROW, "softmax.sum": "ap_ufixed<52,20>"}[
        role]), **SMALL_TABLES, **EXP_TABLES)
    x_t = F("ap_fixed<16,8>")
    assert sm._fused_plan(x_t) is None  # the running sum's product needs 64 bits
    x = x_t.quantize(np.random.default_rng(10).normal(0, 2, (3, 9)))
    want, want_ovf = reference(sm, x, x_t, None)
    ovf: dict[str, int] = {}
    np.testing.assert_array_equal(sm.forward(x, x_t, overflow=ovf), want)
    assert ovf == want_ovf
    assert SOFTMAX["two_pass"].build(lambda role: F(NARROW[role]))._fused_plan(
        F("ap_fixed<63,10>")) is None


@pytest.mark.parametrize("name", ROM_VARIANTS)
def test_fused_forward_reports_bad_inputs_as_the_definition_does(name: str) -> None:
    sm = SOFTMAX[name].build(lambda role: F(NARROW[role]), **SMALL_TABLES)
    x_t = F("ap_fixed<16,8>")
    x = np.zeros((2, 4), np.int64)
    bad = [
        (x + x_t.max_raw + 1, None, "codes must lie"),
        (x.astype(float), None, "integer codes"),
        (np.zeros((2, 0), np.int64), None, "N >= 1"),
        (x, np.array([0, 1, 1, 2]), "permutation"),
        (x, np.array([0, 1, 2]), "permutations of 4"),
        (x, np.zeros((3, 4), np.int64) + np.arange(4), "does not broadcast"),
    ]
    for scores_raw, order, match in bad:
        with pytest.raises(UsageError, match=match):
            sm.stats(scores_raw, x_t, order)
        with pytest.raises(UsageError, match=match):
            sm.forward(scores_raw, x_t, order)
