"""FixedType parsing, canonical spelling and properties."""

from __future__ import annotations

import pytest
from _fixed_oracle import formats
from hypothesis import given, settings

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, Overflow, Rounding


@settings(deadline=None)
@given(fmt=formats())
def test_str_round_trips(fmt: FixedType) -> None:
    assert FixedType.parse(str(fmt)) == fmt
    assert str(fmt) == fmt.c_type


@pytest.mark.parametrize(
    ("text", "expected", "canonical"),
    [
        ("ap_fixed<16,6>", FixedType(16, 6), "ap_fixed<16,6>"),
        (
            "ap_fixed<16,6,AP_RND_CONV,AP_SAT>",
            FixedType(16, 6, True, Rounding.RND_CONV, Overflow.SAT),
            "ap_fixed<16,6,AP_RND_CONV,AP_SAT>",
        ),
        ("ap_ufixed<8,0>", FixedType(8, 0, False), "ap_ufixed<8,0>"),
        (
            "ap_fixed<16,6,AP_TRN,AP_WRAP,2>",
            FixedType(16, 6, sat_bits=2),
            "ap_fixed<16,6,AP_TRN,AP_WRAP,2>",
        ),
        ("ap_fixed<16,6,AP_TRN,AP_WRAP,0>", FixedType(16, 6), "ap_fixed<16,6>"),
        (
            " ap_fixed < 12 , -3 , AP_RND > ",
            FixedType(12, -3, True, Rounding.RND),
            "ap_fixed<12,-3,AP_RND>",
        ),
        ("ap_int<8>", FixedType(8, 8, rounding=Rounding.TRN_ZERO), "ap_int<8>"),
        ("ap_uint<12>", FixedType(12, 12, False, Rounding.TRN_ZERO), "ap_uint<12>"),
        ("ap_fixed<8,8,AP_TRN_ZERO>", FixedType(8, 8, rounding=Rounding.TRN_ZERO), "ap_int<8>"),
        ("ap_fixed<8,8>", FixedType(8, 8), "ap_fixed<8,8>"),
    ],
)
def test_parse_examples(text: str, expected: FixedType, canonical: str) -> None:
    fmt = FixedType.parse(text)
    assert fmt == expected
    assert str(fmt) == canonical


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("ap_fixed<16>", "2 to 5 arguments"),
        ("ap_fixed<0,0>", "1 <= W <= 64"),
        ("ap_fixed<65,3>", "1 <= W <= 64"),
        ("ap_fixed<16,6,AP_ROUND>", "unknown rounding mode 'AP_ROUND'"),
        ("ap_fixed<16,6,AP_TRN,AP_CLAMP>", "unknown overflow mode 'AP_CLAMP'"),
        ("ap_fixed<16,6,AP_TRN,AP_WRAP,17>", "0 <= N <= W"),
        ("ap_ufixed<8,2,AP_TRN,AP_WRAP_SM>", "AP_WRAP_SM"),
        ("ap_fixed<a,2>", "'a' is not an integer"),
        ("fixed<8,2>", "expected ap_fixed<W,I"),
        ("ap_int<8,2>", "1 argument"),
        ("", "expected ap_fixed<W,I"),
    ],
)
def test_parse_errors_quote_the_text_and_say_what_is_expected(text: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        FixedType.parse(text)
    message = str(info.value)
    assert repr(text) in message
    assert fragment in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_properties() -> None:
    fmt = FixedType.parse("ap_fixed<16,6>")
    assert (fmt.frac_bits, fmt.lsb, fmt.min_raw, fmt.max_raw) == (10, 2.0**-10, -32768, 32767)
    assert (fmt.min_value, fmt.max_value) == (-32.0, 32.0 - 2.0**-10)
    ufmt = FixedType.parse("ap_ufixed<8,10>")
    assert (ufmt.frac_bits, ufmt.lsb, ufmt.min_raw, ufmt.max_raw) == (-2, 4.0, 0, 255)
    assert ufmt.max_value == 1020.0
    assert FixedType.integer(8, signed=False) == FixedType.parse("ap_ufixed<8,8>")
    assert FixedType.integer(8) != FixedType.parse("ap_int<8>")  # floors; ap_int truncates
    assert not FixedType(64, 3, False).fits_int64 and FixedType(64, 3).fits_int64


def test_constructor_validates_and_coerces_modes() -> None:
    fmt = FixedType(8, 3, True, "AP_RND", "AP_SAT")
    assert fmt.rounding is Rounding.RND and fmt.overflow is Overflow.SAT
    with pytest.raises(UsageError, match="FixedType.rounding"):
        FixedType(8, 3, True, "AP_NEAREST")
    with pytest.raises(UsageError, match="FixedType.width"):
        FixedType(8.0, 3)
