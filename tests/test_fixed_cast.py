"""Assignment (quantize / cast) against the exact Fraction oracle, every Q x O mode."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from _fixed_oracle import codes, formats, oracle_assign, value_of
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, Overflow, Rounding
from vitaccel.fixed._cast import cast_int_scalar
from vitaccel.fixed._kernels import cast_one, cast_params


def _as_array(values: list[int], fmt: FixedType) -> np.ndarray:
    return np.array(values, dtype=np.int64 if fmt.fits_int64 else object)


@st.composite
def doubles_near(draw, fmt: FixedType) -> list[float]:
    """Doubles at codes plus LSB fractions (exact ties), range edges, far out, any finite."""
    lsb = Fraction(2) ** -fmt.frac_bits
    span = 1 << (fmt.width + 2)
    ties = st.sampled_from(
        [
            Fraction(0),
            Fraction(1, 2),
            Fraction(-1, 2),
            Fraction(1, 4),
            Fraction(3, 4),
            Fraction(-3, 4),
            Fraction(1, 1 << 20),
        ]
    )
    inside = st.builds(
        lambda c, f: float((c + f) * lsb), st.integers(fmt.min_raw - 2, fmt.max_raw + 2), ties
    )
    outside = st.builds(
        lambda c, f: float((c + f) * lsb),
        st.integers(fmt.min_raw - span, fmt.max_raw + span),
        ties,
    )
    anything = st.floats(allow_nan=False, allow_infinity=False)
    return draw(st.lists(st.one_of(inside, inside, outside, anything), min_size=1, max_size=24))


@settings(deadline=None)
@given(data=st.data(), fmt=formats())
def test_quantize_matches_oracle(data, fmt: FixedType) -> None:
    xs = data.draw(doubles_near(fmt))
    raw, n_ovf = fmt.quantize(np.array(xs), return_overflow=True)
    expected = [oracle_assign(Fraction(x), fmt) for x in xs]
    assert raw.dtype == (np.int64 if fmt.fits_int64 else object)
    assert [int(v) for v in raw.tolist()] == [e[0] for e in expected]
    assert n_ovf == sum(e[1] for e in expected)


@settings(deadline=None)
@given(data=st.data(), src=formats(), dst=formats())
def test_cast_matches_oracle(data, src: FixedType, dst: FixedType) -> None:
    raws = data.draw(st.lists(codes(src), min_size=1, max_size=24))
    out, n_ovf = dst.cast(_as_array(raws, src), src, return_overflow=True)
    expected = [oracle_assign(value_of(r, src), dst) for r in raws]
    assert [int(v) for v in out.tolist()] == [e[0] for e in expected]
    assert n_ovf == sum(e[1] for e in expected)
    for r, (code, ovf) in zip(raws, expected, strict=True):
        assert cast_int_scalar(r, src.frac_bits - dst.frac_bits, src.width, dst) == (code, ovf)
        if src.fits_int64 and dst.fits_int64:
            params = cast_params(src.frac_bits - dst.frac_bits, src.width, dst)
            assert cast_one(np.int64(r), params) == (code, ovf)


@settings(deadline=None)
@given(data=st.data(), dst=formats(max_width=24))
def test_cast_with_same_int_bits_rounding_carry(data, dst: FixedType) -> None:
    """Sources with the destination's integer bits and more fraction bits: carries overflow."""
    extra = data.draw(st.integers(1, 8))
    src = FixedType(dst.width + extra, dst.int_bits, dst.signed)
    raws = data.draw(st.lists(codes(src), min_size=1, max_size=16)) + [src.max_raw]
    out = dst.cast(np.array(raws, dtype=np.int64), src)
    assert out.tolist() == [oracle_assign(value_of(r, src), dst)[0] for r in raws]


@pytest.mark.parametrize(
    ("text", "x", "raw"),
    [
        ("ap_fixed<8,3,AP_RND,AP_SAT>", 3.99, 127),  # rounding carry saturates at max
        ("ap_fixed<8,3,AP_RND,AP_WRAP>", 3.984375, -128),  # the same carry wraps
        ("ap_fixed<8,3,AP_RND_CONV>", 0.046875, 2),  # 1.5 LSB -> even
        ("ap_fixed<8,3,AP_RND_CONV>", 0.015625, 0),  # 0.5 LSB -> even
        ("ap_fixed<8,3,AP_RND_ZERO>", -0.046875, -1),  # -1.5 LSB -> toward zero
        ("ap_fixed<8,3,AP_RND_INF>", -0.046875, -2),  # -1.5 LSB -> away from zero
        ("ap_fixed<8,3,AP_RND_MIN_INF>", 0.046875, 1),
        ("ap_fixed<8,3,AP_TRN_ZERO>", -0.04, -1),
        ("ap_fixed<8,3>", -0.04, -2),  # AP_TRN floors
        ("ap_fixed<8,3,AP_TRN,AP_SAT_SYM>", -100.0, -127),
        ("ap_fixed<8,3,AP_TRN,AP_SAT_ZERO>", 5.0, 0),
        ("ap_ufixed<8,3,AP_TRN,AP_SAT>", -1.0, 0),
        ("ap_fixed<8,8,AP_TRN,AP_WRAP,2>", 130.0, 66),  # 0b1000_0010 -> 0b0100_0010
        ("ap_fixed<8,8,AP_TRN,AP_WRAP_SM>", 130.0, 125),  # -126 complemented
        ("ap_fixed<8,-2>", 0.01, 10),  # I < 0: LSB 2**-10
        ("ap_fixed<4,10>", 100.0, 1),  # I > W: LSB 64
    ],
)
def test_known_assignments(text: str, x: float, raw: int) -> None:
    fmt = FixedType.parse(text)
    assert int(fmt.quantize(np.array([x]))[0]) == raw
    assert oracle_assign(Fraction(x), fmt)[0] == raw


def test_values_near_two_to_the_63() -> None:
    wide = FixedType(64, 64)
    raws = np.array([wide.max_raw, wide.min_raw, wide.max_raw - 1, -5], dtype=np.int64)
    narrow = FixedType(62, 60, True, Rounding.RND_CONV, Overflow.SAT)
    out = narrow.cast(raws, wide)
    assert out.tolist() == [oracle_assign(value_of(int(r), wide), narrow)[0] for r in raws]
    big = FixedType(64, 10, False, Rounding.RND)
    got = big.quantize(np.array([1023.9999, 0.5]))
    assert got.dtype == object
    assert got.tolist() == [oracle_assign(Fraction(v), big)[0] for v in (1023.9999, 0.5)]
    assert FixedType(64, 64).to_float(np.array([2**63 - 1]))[0] == 2.0**63


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_quantize_rejects_nan_and_inf(bad: float) -> None:
    with pytest.raises(UsageError, match="NaN or infinite"):
        FixedType(8, 3).quantize(np.array([0.0, bad]))


def test_cast_rejects_codes_outside_the_source_format() -> None:
    with pytest.raises(UsageError, match=r"\[-128, 127\]"):
        FixedType(16, 6).cast(np.array([200]), FixedType(8, 3))
    with pytest.raises(UsageError, match="integer codes"):
        FixedType(16, 6).cast(np.array([0.5]), FixedType(8, 3))


@pytest.mark.parametrize("dst", [FixedType(8, 3), FixedType(8, 3, overflow=Overflow.SAT)])
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_large_casts_reject_codes_outside_the_source_format(dst, dtype) -> None:
    """Large arrays (the compiled trn/wrap and general kernels) are validated like small
    ones, whatever their integer dtype."""
    from vitaccel.fixed._cast import _COMPILED_MIN_SIZE

    src = FixedType(12, 5)
    a = np.zeros(_COMPILED_MIN_SIZE + 3, dtype)
    a[:2] = src.min_raw, src.max_raw
    dst.cast(a, src)  # in range: fine
    for bad in (src.max_raw + 1, src.min_raw - 1):
        a[-1] = bad
        with pytest.raises(UsageError, match=r"cast raw: codes must lie in \[-2048, 2047\] "):
            dst.cast(a, src)


def test_identity_cast_copies_unless_told_not_to() -> None:
    src, dst = FixedType(8, 3), FixedType(12, 7)  # every code of src is a code of dst
    a = np.arange(-128, 128, dtype=np.int64)
    kept, n = dst.cast(a, src, return_overflow=True, copy=False)
    assert kept is a and n == 0
    fresh = dst.cast(a, src)
    np.testing.assert_array_equal(fresh, a)
    assert not np.shares_memory(fresh, a)
    rounded = FixedType(8, 4).cast(a, src, copy=False)  # not an identity: always new codes
    assert not np.shares_memory(rounded, a)
    np.testing.assert_array_equal(rounded, a >> 1)  # AP_TRN: one fraction bit fewer


def test_to_float_is_exact_within_53_bits() -> None:
    fmt = FixedType(20, 4)
    raws = np.arange(fmt.min_raw, fmt.max_raw + 1, 997, dtype=np.int64)
    assert fmt.to_float(raws).tolist() == [float(value_of(int(r), fmt)) for r in raws]
    np.testing.assert_array_equal(fmt.quantize(fmt.to_float(raws)), raws)


@settings(max_examples=60, deadline=None)
@given(src=formats(), dst=formats(), seed=st.integers(0, 2**31 - 1))
def test_compiled_cast_of_large_arrays_equals_the_vectorised_cast(src, dst, seed) -> None:
    """Large arrays go through the compiled scalar kernel; it must give the numpy path's bits
    (which the oracle tests pin) and the same overflow mask."""
    from vitaccel.fixed._cast import _COMPILED_MIN_SIZE, _cast_int64, cast_raw

    if not (src.fits_int64 and dst.fits_int64):
        return
    rng = np.random.default_rng(seed)
    a = rng.integers(src.min_raw, src.max_raw, size=_COMPILED_MIN_SIZE + 7, endpoint=True,
                     dtype=np.int64)
    a[:2] = [src.min_raw, src.max_raw]
    got = cast_raw(a, src, dst)
    shift = np.full(a.shape, np.int64(src.frac_bits - dst.frac_bits))
    want = _cast_int64(a, shift, src.width, dst)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@settings(max_examples=60, deadline=None)
@given(data=st.data(), fmt=formats())
def test_compiled_quantize_of_large_arrays_matches_the_oracle(data, fmt: FixedType) -> None:
    """Large float arrays are quantized by the compiled kernel: same codes and overflow mask
    as the oracle (ties, extremes, out-of-range and arbitrary doubles, repeated to fill the
    array), including subnormals and signed zeros."""
    from vitaccel.fixed._cast import _COMPILED_MIN_SIZE

    if not fmt.fits_int64:
        return
    xs = data.draw(doubles_near(fmt)) + [5e-324, -5e-324, -0.0, 2.0**-1074 * 3, 1e300]
    a = np.resize(np.array(xs), _COMPILED_MIN_SIZE + 3)
    raw, n_ovf = fmt.quantize(a, return_overflow=True)
    expected = {x: oracle_assign(Fraction(x), fmt) for x in set(xs)}
    assert [int(v) for v in raw.tolist()] == [expected[x][0] for x in a.tolist()]
    assert n_ovf == sum(expected[x][1] for x in a.tolist())


@pytest.mark.parametrize("n", [1, 4097, 300_001])
def test_code_range_matches_numpy_at_the_int64_extremes(n: int) -> None:
    """The one-pass (serial, and parallel for large arrays) min/max that validates codes."""
    from vitaccel.fixed._kernels import code_range

    rng = np.random.default_rng(n)
    a = rng.integers(-(2**62), 2**62, n)
    assert code_range(a) == (a.min(), a.max())
    a[n // 2], a[-1] = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    assert code_range(a) == (a.min(), a.max())
    assert code_range(a[::-1].reshape(1, n)) == (a.min(), a.max())


@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (1576, 2), (4728, 6)])
def test_column_sums_match_numpy(shape: tuple[int, int]) -> None:
    """The overflow-count totals of the fused kernels (work items x roles)."""
    from vitaccel.fixed._kernels import column_sums

    a = np.random.default_rng(shape[0]).integers(0, 1 << 40, shape)
    got = column_sums(a)
    assert got == a.sum(axis=0).tolist() and all(type(v) is int for v in got)
    assert column_sums(a[:, ::-1]) == a[:, ::-1].sum(axis=0).tolist()  # a strided view


@pytest.mark.parametrize("fmt_text", [
    "ap_ufixed<8,0>", "ap_fixed<16,2,AP_RND_CONV,AP_SAT_SYM>", "ap_fixed<10,-3,AP_RND_MIN_INF>",
    "ap_fixed<12,4,AP_RND_INF,AP_WRAP_SM,2>", "ap_fixed<60,500,AP_RND_ZERO,AP_WRAP,3>",
    "ap_fixed<40,-400,AP_RND>",
])
def test_specialised_quantize_matches_the_oracle(fmt_text: str) -> None:
    """Images-sized arrays run the quantizer compiled with the format as constants (read
    from the doubles' bits): same codes and overflow count as the oracle, for ties,
    extremes, out-of-range values, subnormals and signed zeros."""
    from _fused_cases import specialising

    fmt = FixedType.parse(fmt_text)
    rng = np.random.default_rng(len(fmt_text))
    xs = sorted(set(
        np.ldexp(rng.integers(-(2**20), 2**20, 300), rng.integers(-30, 10, 300)).tolist()
        + [0.5 * fmt.lsb * k for k in range(-9, 10)] + [fmt.max_value, fmt.min_value]
        + [fmt.max_value + fmt.lsb / 2, fmt.min_value - fmt.lsb, 5e-324, -5e-324, -0.0,
           2.0**-1074 * 3, 1e300, -1e300, 1.5 * 2.0**1023]))
    a = np.resize(np.array(xs), 1 << 12)
    with specialising():
        raw, n_ovf = fmt.quantize(a, return_overflow=True)
    expected = {x: oracle_assign(Fraction(x), fmt) for x in xs}
    assert [int(v) for v in raw.tolist()] == [expected[x][0] for x in a.tolist()]
    assert n_ovf == sum(expected[x][1] for x in a.tolist())
