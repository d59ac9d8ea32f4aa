"""The fused GELU kernels equal the vectorised definitions (``_reference_forward``) bit for
bit, with the same overflow counts per role, for every table variant, format and input; with
a final assignment to another format (``then``, the linear engine's output) they equal the
definition followed by that assignment."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _fixed_oracle import codes, formats
from _fused_cases import assert_same_results, fmt, specialising
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, Overflow, Rounding
from vitaccel.fixed._assign import assign_one
from vitaccel.fixed._kernels import cast_one, cast_params
from vitaccel.fixed._specialise import SPECIALISE_MIN
from vitaccel.units import _gelu_kernels
from vitaccel.units._fused import cast_tuples
from vitaccel.units._ops import assign, count, int_codes
from vitaccel.units.gelu import DeltaTableGelu, LutGelu, TanhGelu

F = FixedType.parse
KERNELS = {"delta_table": _gelu_kernels.delta_table, "lut": _gelu_kernels.lut,
           "tanh": _gelu_kernels.tanh}


def assert_fused_equals_reference(g, x: np.ndarray, x_t: FixedType, specialised: bool = False,
                                  dst: FixedType | None = None) -> bool:
    """Compare the fused kernel (when it applies; its general or its specialised
    compilation) and ``forward`` with the definition, and with ``dst`` the kernel with that
    final assignment and ``_forward_assigned`` with the definition then the assignment.

    Returns whether the fused kernel applied.
    """
    applied, _ = compare(g, x, x_t, specialised, dst)
    return applied


def check_and_record(g, x: np.ndarray, x_t: FixedType, dst: FixedType | None) -> None:
    """:func:`compare`, recording the path and the overflowed roles as hypothesis events."""
    applied, ovf = compare(g, x, x_t, False, dst)
    event("fused" if applied else "reference")
    event("overflows: " + ", ".join(sorted(ovf)))


def compare(g, x: np.ndarray, x_t: FixedType, specialised: bool,
            dst: FixedType | None = None) -> tuple[bool, dict[str, int]]:
    """(whether the fused kernel applied, the definition's overflow counts, with the final
    assignment's under "out")."""
    want_ovf: dict[str, int] = {}
    try:
        want = g._reference_forward(int_codes(x, x_t, "x"), x_t, want_ovf)
    except UsageError:
        with pytest.raises(UsageError):
            g.forward(x, x_t, {})
        return False, {}
    assert want.dtype == np.int64 and want.shape == x.shape
    codes = int_codes(x, x_t, "x")
    with specialising(specialised):
        kernel: dict[str, int] = {}
        kernel_out = KERNELS[g.NAME](g, codes, x_t, kernel)
        public: dict[str, int] = {}
        applied = assert_same_results(want, want_ovf, (g.forward(x, x_t, public), public),
                                      (kernel_out, kernel))
    if dst is None:
        return applied, want_ovf
    want, n = dst.cast(want, g.out_t, return_overflow=True)
    count(want_ovf, "out", n)
    with specialising(specialised):
        kernel = {}
        kernel_out = KERNELS[g.NAME](g, codes, x_t, kernel, (dst, "out"))
        public = {}
        fwd = g._forward_assigned(codes, x_t, dst, "out", public)
        return assert_same_results(want, want_ovf, (fwd, public), (kernel_out, kernel)), want_ovf


# ------------------------------------------------------------------------ strategies


def code_of(value: float, t: FixedType) -> int:
    """The code of ``value`` in ``t``, floored and clamped to the code range."""
    return min(max(math.floor(math.ldexp(value, t.frac_bits)), t.min_raw), t.max_raw)


@st.composite
def inputs(draw, x_t: FixedType, edges: list[float]) -> np.ndarray:
    """Codes of ``x_t``: extremes, small values, and the table edges (exact, one LSB off)."""
    pool = sorted({min(max(code_of(e, x_t) + d, x_t.min_raw), x_t.max_raw)
                   for e in edges for d in (-1, 0, 1)})
    value = st.one_of(codes(x_t), st.sampled_from(pool))
    n = draw(st.integers(1, 40))
    x = np.array(draw(st.lists(value, min_size=n, max_size=n)), dtype=np.int64)
    return x.reshape(draw(st.sampled_from([(n,), (1, n), (n, 1)])))


def out_format(short: bool):
    """Output formats, narrow ones (overflowing) included."""
    return fmt(st.integers(1, 40), st.integers(-6, 24), short=short)


def then_format(short: bool):
    """Formats of a final assignment: none, an output format, or one whose codes do not fit
    int64 (the kernel then declines)."""
    return st.one_of(st.none(), out_format(short), st.just(FixedType(64, 10, False)))


def input_format(draw, max_width: int) -> FixedType:
    w = draw(st.integers(4, max_width))
    return draw(fmt(st.just(w), st.integers(-2, min(w, 16))))


def build(cls, **kwargs):
    try:
        return cls(**kwargs)
    except UsageError:  # a ROM format that cannot hold the samples
        assume(False)


# ------------------------------------------------------------------------ equivalence
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_delta_table_fused_equals_definition(data) -> None:
    step = data.draw(st.integers(-6, -2))
    short = data.draw(st.booleans())
    table_t = data.draw(fmt(st.integers(8, 30), st.integers(0, 2), short=short))
    fb = data.draw(st.one_of(st.none(), st.integers(1, 24)))
    assume(fb is not None or table_t.frac_bits + step >= 1)
    t_max = data.draw(st.sampled_from([1.0, 2.5, 5.5]))
    g = build(DeltaTableGelu, table_t=table_t, out_t=data.draw(out_format(short)),
              step_log2=step, fraction_bits=fb, t_max=t_max)
    x_t = input_format(data.draw, 62)
    x = data.draw(inputs(x_t, [t_max, -t_max, t_max - 2.0**step, 0.0]))
    check_and_record(g, x, x_t, data.draw(then_format(short)))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_lut_fused_equals_definition(data) -> None:
    step = data.draw(st.integers(-6, -2))
    short = data.draw(st.booleans())
    table_t = data.draw(fmt(st.integers(10, 30), st.integers(4, 5), signed=True, short=short))
    x_min, x_max = data.draw(st.sampled_from([(-6.0, 6.0), (-2.0, 2.0), (-4.0, 3.0)]))
    g = build(LutGelu, table_t=table_t, out_t=data.draw(out_format(short)),
              step_log2=step, fraction_bits=data.draw(st.integers(1, 20)), x_min=x_min,
              x_max=x_max)
    x_t = input_format(data.draw, 62)
    x = data.draw(inputs(x_t, [x_min, x_max, x_max - 2.0**step, 0.0]))
    check_and_record(g, x, x_t, data.draw(then_format(short)))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_tanh_fused_equals_definition(data) -> None:
    step = data.draw(st.integers(-6, -3))
    t_max = data.draw(st.sampled_from([4.0, 8.0]))
    signed, short = data.draw(st.booleans()), data.draw(st.booleans())  # the ROM holds [0, 1]
    table_t = data.draw(fmt(st.integers(8, 24), st.sampled_from([int(signed), 1 + signed]),
                            signed=signed, short=short))
    g = build(TanhGelu, table_t=table_t,
              out_t=data.draw(out_format(short)),
              poly_t=data.draw(fmt(st.integers(8, 40), st.integers(2, 14), signed=True,
                                   short=short)),
              step_log2=step, fraction_bits=data.draw(st.integers(4, 16)), tanh_t_max=t_max,
              poly_clip=data.draw(st.sampled_from([2.0, 8.0, 100.0])),
              const_frac_bits=data.draw(st.sampled_from([8, 16, 24])))
    x_t = input_format(data.draw, 40)
    x = data.draw(inputs(x_t, [g.poly_clip, -g.poly_clip, 1.0, -1.0, 0.0]))
    check_and_record(g, x, x_t, data.draw(then_format(short)))


# ------------------------------------------------------------------------ presets, paths
EDGE = {"table_t": F("ap_ufixed<22,0>"), "out_t": F("ap_fixed<32,10>")}


@pytest.mark.parametrize("x_t", ["ap_fixed<32,10>", "ap_fixed<40,10>"])
@pytest.mark.parametrize("name", ["delta_table", "lut", "tanh"])
def test_preset_formats_take_the_fused_path(name: str, x_t: str) -> None:
    x_t = F(x_t)
    g = {"delta_table": lambda: DeltaTableGelu(**EDGE),
         "lut": lambda: LutGelu(table_t=F("ap_fixed<22,4>"), out_t=EDGE["out_t"]),
         "tanh": lambda: TanhGelu(table_t=F("ap_ufixed<20,1>"), out_t=EDGE["out_t"],
                                  poly_t=F("ap_fixed<24,12>"))}[name]()
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.integers(x_t.min_raw, x_t.max_raw, 3000, endpoint=True),
                        np.floor(rng.normal(0, 3, 3000) * 2.0**x_t.frac_bits).astype(np.int64),
                        [x_t.min_raw, x_t.max_raw]]).reshape(2, 3001)
    if name == "tanh" and x_t.width > 32:  # x * x needs more than 64 bits: the definition
        assert KERNELS[name](g, x, x_t, {}) is None
    else:  # the Edge-MoE activation format also through its specialised compilation
        for dst in (None, F("ap_fixed<8,2>"), F("ap_fixed<16,4,AP_RND,AP_SAT>")):
            assert assert_fused_equals_reference(g, x, x_t, x_t.width == 32, dst)


def test_specialised_path_on_a_large_input() -> None:
    g, x_t = DeltaTableGelu(**EDGE), F("ap_fixed<32,10>")
    rng = np.random.default_rng(2)
    x = np.floor(rng.normal(0, 4, (3, 197, 512)) * 2**22).astype(np.int64)
    assert x.size >= SPECIALISE_MIN
    want_ovf: dict[str, int] = {}
    want = g._reference_forward(x, x_t, want_ovf)
    got_ovf: dict[str, int] = {}
    np.testing.assert_array_equal(g.forward(x, x_t, got_ovf), want)
    assert got_ovf == want_ovf
    dst = F("ap_fixed<8,3,AP_RND,AP_SAT>")  # the linear engine's output assignment
    want = assign(dst, want, g.out_t, want_ovf, "out")
    got_ovf = {}
    np.testing.assert_array_equal(g._forward_assigned(x, x_t, dst, "out", got_ovf), want)
    assert got_ovf == want_ovf and want_ovf["out"] > 0


def test_overflow_counts_per_role() -> None:
    x_t = F("ap_fixed<24,8>")
    x = np.arange(x_t.min_raw, x_t.max_raw, 997, dtype=np.int64)
    delta = DeltaTableGelu(table_t=EDGE["table_t"], out_t=F("ap_fixed<8,2,AP_RND,AP_WRAP>"))
    tanh = TanhGelu(table_t=F("ap_ufixed<12,1>"), out_t=F("ap_fixed<10,3,AP_TRN,AP_SAT>"),
                    poly_t=F("ap_fixed<16,4,AP_RND,AP_SAT_SYM>"))
    for g, roles in ((delta, {"gelu.out"}), (tanh, {"gelu.poly", "gelu.out"})):
        assert assert_fused_equals_reference(g, x, x_t)
        assert assert_fused_equals_reference(g, x, x_t, specialised=True)
        ovf: dict[str, int] = {}
        g.forward(x, x_t, ovf)
        assert roles <= {role for role, n in ovf.items() if n > 0}


def test_wide_input_falls_back_to_the_definition() -> None:
    g = DeltaTableGelu(**EDGE)
    x_t = F("ap_fixed<63,20>")  # |x| needs 64 bits: the definition rejects it
    assert _gelu_kernels.delta_table(g, np.zeros(3, np.int64), x_t, {}) is None
    with pytest.raises(UsageError):
        g.forward(np.zeros(3, np.int64), x_t)
    wide_out = DeltaTableGelu(table_t=EDGE["table_t"], out_t=FixedType(64, 10, False))
    assert _gelu_kernels.delta_table(wide_out, np.zeros(3, np.int64), EDGE["out_t"], {}) is None


def test_empty_input() -> None:
    g, x_t = DeltaTableGelu(**EDGE), EDGE["out_t"]
    out = g.forward(np.zeros((0, 4), np.int64), x_t)
    assert out.shape == (0, 4) and out.dtype == np.int64


# ------------------------------------------------------------------------ assign_one
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_assign_one_equals_cast_one(data) -> None:
    src = data.draw(formats(max_width=64, signed=True))
    dst = data.draw(formats(max_width=63))
    common = FixedType(  # the formats of assign_one's short path
        data.draw(st.integers(1, 40)), data.draw(st.integers(-4, 20)), data.draw(st.booleans()),
        data.draw(st.sampled_from([Rounding.TRN, Rounding.RND])),
        data.draw(st.sampled_from([Overflow.WRAP, Overflow.SAT])))
    for t in (dst, common):
        (c,) = cast_tuples([(src, t)])
        packed = np.array(cast_params(src.frac_bits - t.frac_bits, src.width, t), np.int64)
        for raw in data.draw(st.lists(codes(src), min_size=1, max_size=8)):
            got = assign_one(np.int64(raw), c)
            want = cast_one(np.int64(raw), packed)
            assert (int(got[0]), bool(got[1])) == (int(want[0]), bool(want[1]))
