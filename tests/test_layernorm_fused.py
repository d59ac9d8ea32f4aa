"""The fused LayerNorm kernel equals the vectorised definition (``_reference_forward``) bit for
bit, with the same overflow counts per role, for both fixed-point variants, every format, row
shape and input (constant rows, variances above 1, D = 1, large D); with a final assignment
to another format (the node's output) it equals the definition followed by that assignment."""

from __future__ import annotations

import numpy as np
import pytest
from _fixed_oracle import codes, formats
from _fused_cases import assert_same_results, fmt, specialising
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType
from vitaccel.fixed._specialise import SPECIALISE_MIN
from vitaccel.units import _layernorm_kernels
from vitaccel.units.layernorm import (
    IsqrtLayerNorm,
    RsqrtTableLayerNorm,
    _isqrt,
    checked_inputs,
)

F = FixedType.parse
EDGE = {
    "mean_t": F("ap_fixed<32,10>"), "centered_t": F("ap_fixed<32,10>"),
    "var_t": F("ap_ufixed<48,20>"), "rsqrt_t": F("ap_ufixed<32,11>"),
    "norm_t": F("ap_fixed<32,8>"), "out_t": F("ap_fixed<32,10>"),
}
W16 = {
    "mean_t": F("ap_fixed<24,10>"), "centered_t": F("ap_fixed<24,10>"),
    "var_t": F("ap_ufixed<32,16>"), "rsqrt_t": F("ap_ufixed<24,11>"),
    "norm_t": F("ap_fixed<24,8>"), "out_t": F("ap_fixed<24,8>"),
}


def compare(ln, x, x_t, g, g_t, b, b_t, specialised: bool,
            dst: FixedType | None = None) -> tuple[bool, dict[str, int]]:
    """Compare the fused kernel (when it applies; its general or its specialised
    compilation) and ``forward`` with the definition; with ``dst`` also the kernel with that
    final assignment and ``forward_assigned`` with the definition then the assignment.

    Returns (whether the fused kernel applied, the definition's overflow counts, with the
    final assignment's under "out").
    """
    want_ovf: dict[str, int] = {}
    try:
        want = ln._reference_forward(*_validated(x, x_t, g, g_t, b, b_t), want_ovf)
    except UsageError:
        with pytest.raises(UsageError):
            ln.forward(x, x_t, g, g_t, b, b_t, {})
        return False, {}
    assert want.dtype == np.int64 and want.shape == x.shape
    xv, _, gv, _, bv, _ = _validated(x, x_t, g, g_t, b, b_t)
    plan = ln._rsqrt_plan()

    def fused(counts: dict[str, int], then=None) -> np.ndarray | None:
        return None if plan is None else _layernorm_kernels.forward(
            ln, plan, xv, x_t, gv, g_t, bv, b_t, counts, then)

    with specialising(specialised):
        kernel: dict[str, int] = {}
        kernel_out = fused(kernel)
        public: dict[str, int] = {}
        fwd = ln.forward(x, x_t, g, g_t, b, b_t, public)
        applied = assert_same_results(want, want_ovf, (fwd, public), (kernel_out, kernel))
    if dst is None:
        return applied, want_ovf
    want, n = dst.cast(want, ln.out_t, return_overflow=True)
    if n:
        want_ovf["out"] = int(n)
    with specialising(specialised):
        kernel = {}
        kernel_out = fused(kernel, (dst, "out"))
        public = {}
        fwd = ln.forward_assigned(x, x_t, g, g_t, b, b_t, dst, "out", public)
        return assert_same_results(want, want_ovf, (fwd, public), (kernel_out, kernel)), want_ovf


def _validated(x, x_t, g, g_t, b, b_t):
    xv, gv, bv = checked_inputs(x, x_t, g, g_t, b, b_t)
    return xv, x_t, gv, g_t, bv, b_t


# ------------------------------------------------------------------------ strategies


@st.composite
def variants(draw, short: bool):
    """A LayerNorm variant with drawn role formats (rejected where the builder refuses)."""
    unit = fmt(st.integers(6, 36), st.integers(-2, 14), short=short)
    roles = {
        "mean_t": draw(unit), "centered_t": draw(unit),
        "var_t": draw(fmt(st.integers(6, 50), st.integers(-4, 24), short=short)),
        "rsqrt_t": draw(fmt(st.sampled_from([34, 34, 60]).flatmap(lambda w: st.integers(6, w)),
                            st.integers(-8, 14), short=short)),
        "norm_t": draw(unit), "out_t": draw(fmt(st.integers(1, 40), st.integers(-6, 24),
                                                 short=short)),
        "eps": draw(st.sampled_from([1e-6, 1e-3, 0.5])),
    }
    try:
        if draw(st.booleans()):
            return IsqrtLayerNorm(**roles, sqrt_t=draw(fmt(st.integers(6, 34),
                                                           st.integers(0, 16), short=short)))
        signed = draw(st.booleans())  # the ROM holds [0.5, 1]
        return RsqrtTableLayerNorm(
            **roles, rsqrt_table_t=draw(fmt(st.integers(8, 24), st.just(1 + signed),
                                            signed=signed, short=short)),
            step_log2=draw(st.integers(-5, -3)), fraction_bits=draw(st.integers(6, 16)),
            newton_steps=draw(st.integers(0, 2)))
    except UsageError:
        assume(False)


@st.composite
def rows(draw, x_t: FixedType) -> np.ndarray:
    """Codes (..., D): random, constant, two-valued (variance above 1) and extreme rows."""
    d = draw(st.one_of(st.sampled_from([1, 2, 3, 7, 16]), st.integers(1, 64),
                       st.sampled_from([300, 1024])))
    lead = draw(st.sampled_from([(1,), (3,), (2, 2)]))
    spread = draw(st.sampled_from([1, 16, 1 << 12, x_t.max_raw]))
    lo, hi = max(x_t.min_raw, -spread), min(x_t.max_raw, spread)
    out = []
    for _ in range(int(np.prod(lead))):
        kind = draw(st.sampled_from(["random", "constant", "two", "extremes"]))
        if kind == "constant":
            out.append([draw(codes(x_t))] * d)
        elif kind == "two":
            a, c = draw(codes(x_t)), draw(codes(x_t))
            out.append([a if i % 2 else c for i in range(d)])
        elif kind == "extremes":
            pool = st.sampled_from([x_t.min_raw, x_t.max_raw, 0])
            out.append(draw(st.lists(pool, min_size=d, max_size=d)))
        else:
            out.append(draw(st.lists(st.integers(lo, hi), min_size=d, max_size=d)))
    return np.array(out, dtype=np.int64).reshape(*lead, d)


# ------------------------------------------------------------------------ equivalence
@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_fused_forward_equals_definition(data) -> None:
    short = data.draw(st.booleans())
    ln = data.draw(variants(short))
    w = data.draw(st.integers(4, 40))
    x_t = data.draw(fmt(st.just(w), st.integers(-2, min(w, 16))))
    x = data.draw(rows(x_t))
    d = x.shape[-1]
    g_t = data.draw(formats(max_width=20))
    b_t = data.draw(formats(max_width=20))
    g = np.array(data.draw(st.lists(codes(g_t), min_size=d, max_size=d)), dtype=np.int64)
    b = np.array(data.draw(st.lists(codes(b_t), min_size=d, max_size=d)), dtype=np.int64)
    dst = data.draw(st.one_of(st.none(), fmt(st.integers(1, 40), st.integers(-4, 20)),
                              st.just(FixedType(64, 10, False))))
    applied, ovf = compare(ln, x, x_t, g, g_t, b, b_t, False, dst)
    event(f"{ln.NAME}: {'fused' if applied else 'reference'}")
    event("overflows: " + ", ".join(sorted(ovf)))


@pytest.mark.parametrize("roles", [EDGE, W16], ids=["edge-moe", "w16a16"])
@pytest.mark.parametrize("name", ["rsqrt_table", "isqrt"])
def test_preset_formats_take_the_fused_path(name: str, roles: dict) -> None:
    ln = (RsqrtTableLayerNorm(**roles, rsqrt_table_t=F("ap_ufixed<18,1>")) if name == "rsqrt_table"
          else IsqrtLayerNorm(**roles, sqrt_t=F("ap_ufixed<24,12>")))
    x_t, g_t, b_t = roles["mean_t"], F("ap_fixed<16,5>"), F("ap_fixed<16,-2>")
    rng = np.random.default_rng(3)
    x = np.floor(rng.normal(0, 1, (8, 197, 192)) * rng.choice([1e-3, 1, 40], (8, 197, 1))
                 * 2.0**x_t.frac_bits).astype(np.int64)
    x[0, 0] = x_t.max_raw  # constant rows
    x[0, 1, ::2], x[0, 1, 1::2] = x_t.min_raw, x_t.max_raw  # the largest variance
    g = rng.integers(g_t.min_raw, g_t.max_raw, 192, endpoint=True)
    b = rng.integers(b_t.min_raw, b_t.max_raw, 192, endpoint=True)
    assert x.size >= SPECIALISE_MIN  # forward runs the specialised compilation
    applied, ovf = compare(ln, x, x_t, g, g_t, b, b_t, True, F("ap_fixed<8,2>"))
    assert applied and ovf and ovf["out"] > 0  # the extreme rows overflow


NARROW = {  # every rounding and overflow mode off the branch-free short assignment
    "mean_t": F("ap_fixed<12,5,AP_RND_CONV,AP_SAT_SYM>"),
    "centered_t": F("ap_fixed<12,4,AP_RND_ZERO,AP_WRAP,1>"),
    "var_t": F("ap_ufixed<20,8,AP_RND_INF,AP_SAT>"),
    "rsqrt_t": F("ap_ufixed<14,4,AP_RND_MIN_INF,AP_WRAP>"),
    "norm_t": F("ap_fixed<10,3,AP_TRN_ZERO,AP_SAT_SYM>"),
    "out_t": F("ap_fixed<8,2,AP_RND,AP_SAT_ZERO>"),
}


@pytest.mark.parametrize("name", ["rsqrt_table", "isqrt"])
def test_general_and_specialised_compilations_agree(name: str) -> None:
    """The specialised kernel (the parameters as constants, parallel rows) gives the general
    kernel's bits and counts, on formats that saturate, wrap and round in every mode."""
    ln = (RsqrtTableLayerNorm(**NARROW, rsqrt_table_t=F("ap_ufixed<12,1,AP_RND_CONV>"),
                              newton_steps=1) if name == "rsqrt_table"
          else IsqrtLayerNorm(**NARROW, sqrt_t=F("ap_ufixed<16,8,AP_RND_INF,AP_SAT>")))
    x_t, g_t, b_t = F("ap_fixed<16,6>"), F("ap_fixed<10,3>"), F("ap_fixed<10,1>")
    rng = np.random.default_rng(4)
    x = np.floor(rng.normal(0, 1, (4, 9, 48)) * rng.choice([0.05, 1, 20], (4, 9, 1))
                 * 2.0**x_t.frac_bits).clip(x_t.min_raw, x_t.max_raw).astype(np.int64)
    g = rng.integers(g_t.min_raw, g_t.max_raw, 48, endpoint=True)
    b = rng.integers(b_t.min_raw, b_t.max_raw, 48, endpoint=True)
    dst = F("ap_fixed<6,1,AP_RND_CONV,AP_SAT_SYM>")
    runs = [compare(ln, x, x_t, g, g_t, b, b_t, on, dst) for on in (False, True)]
    assert runs[0] == runs[1]  # both equal the definition, with the same counts
    applied, ovf = runs[0]
    assert applied and len(ovf) >= 3


def test_wide_formats_fall_back_to_the_definition() -> None:
    wide = dict(EDGE, centered_t=F("ap_fixed<40,10>"))  # xc * xc needs 80 bits
    ln = RsqrtTableLayerNorm(**wide, rsqrt_table_t=F("ap_ufixed<18,1>"))
    x_t, g_t = EDGE["mean_t"], F("ap_fixed<16,5>")
    x = np.arange(12, dtype=np.int64).reshape(2, 6) << 20
    g = np.full(6, 1 << 11)
    assert _layernorm_kernels.forward(ln, ln._rsqrt_plan(), x, x_t, g, g_t, g, g_t, {}) is None
    assert compare(ln, x, x_t, g, g_t, g, g_t, specialised=False) == (False, {})
    too_wide = FixedType(62, 10)  # the exact sum needs more than 63 bits: the definition raises
    assert compare(ln, x, too_wide, g, g_t, g, g_t, specialised=False) == (False, {})


def test_saturated_shifter_word_counts_as_an_rsqrt_overflow() -> None:
    tiny = dict(EDGE, var_t=F("ap_ufixed<52,2>"), centered_t=F("ap_fixed<24,2>"),
                rsqrt_t=F("ap_ufixed<40,-20>"))  # 1/sqrt of a tiny variance: a huge left shift
    ln = RsqrtTableLayerNorm(**tiny, rsqrt_table_t=F("ap_ufixed<18,1>"), eps=0.0)
    x_t, g_t = F("ap_fixed<24,2>"), F("ap_fixed<16,5>")
    x = np.array([[5, 5, 5, 5], [5, 6, 5, 6], [-3, 900, 4, 1]], dtype=np.int64)
    g = np.full(4, 1 << 11)
    applied, ovf = compare(ln, x, x_t, g, g_t, g, g_t, specialised=False)
    assert applied and ovf["layernorm.rsqrt"] == 3


def test_empty_rows() -> None:
    ln = RsqrtTableLayerNorm(**EDGE, rsqrt_table_t=F("ap_ufixed<18,1>"))
    g_t = F("ap_fixed<16,5>")
    out = ln.forward(np.zeros((0, 4), np.int64), EDGE["mean_t"], np.ones(4, np.int64), g_t,
                     np.zeros(4, np.int64), g_t)
    assert out.shape == (0, 4) and out.dtype == np.int64


@given(st.lists(st.one_of(st.integers(0, 2**61), st.integers(0, 2**31).map(lambda r: r * r),
                          st.integers(1, 2**31).map(lambda r: r * r - 1)), min_size=1,
                max_size=20))
def test_isqrt_one_equals_isqrt(values: list[int]) -> None:
    v = np.array(values, dtype=np.int64)
    got = np.array([_layernorm_kernels.isqrt_one(np.int64(a)) for a in v], dtype=np.int64)
    np.testing.assert_array_equal(got, _isqrt(v))
