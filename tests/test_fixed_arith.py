"""Result formats and exact values of + - * (signed/unsigned mixing included)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from _fixed_oracle import codes, formats, value_of
from hypothesis import given, settings
from hypothesis import strategies as st

from vitaccel.errors import UsageError
from vitaccel.fixed import (
    FixedType,
    add_type,
    fixed_add,
    fixed_mul,
    fixed_sub,
    mul_type,
    sub_type,
)
from vitaccel.fixed._format import MAX_WIDTH


def _extra(a: FixedType, b: FixedType) -> tuple[int, int]:
    return int(b.signed and not a.signed), int(a.signed and not b.signed)


@settings(deadline=None)
@given(data=st.data(), a=formats(max_width=31), b=formats(max_width=31))
def test_results_are_exact_in_the_header_result_formats(data, a: FixedType, b: FixedType):
    ea, eb = _extra(a, b)
    i_plus = max(a.int_bits + ea, b.int_bits + eb) + 1
    f_plus = max(a.frac_bits, b.frac_bits)
    ops = [(lambda x, y: x * y, fixed_mul)]
    if i_plus + f_plus > MAX_WIDTH:  # far-apart binary points: the exact sum is too wide
        for rule, name in ((add_type, "add_type"), (sub_type, "sub_type")):
            with pytest.raises(UsageError, match=rf"^{name}\(.* is wider than {MAX_WIDTH} bits"):
                rule(a, b)
    else:
        assert add_type(a, b) == FixedType(i_plus + f_plus, i_plus, a.signed or b.signed)
        assert sub_type(a, b) == FixedType(i_plus + f_plus, i_plus, True)
        ops += [(lambda x, y: x + y, fixed_add), (lambda x, y: x - y, fixed_sub)]
    assert mul_type(a, b) == FixedType(
        a.width + b.width, a.int_bits + b.int_bits, a.signed or b.signed
    )
    ra = data.draw(st.lists(codes(a), min_size=1, max_size=12))
    rb = data.draw(st.lists(codes(b), min_size=len(ra), max_size=len(ra)))
    for op, fn in ops:
        raw, rt = fn(np.array(ra), a, np.array(rb), b)
        assert raw.dtype == (np.int64 if rt.fits_int64 else object)
        for x, y, r in zip(ra, rb, raw.tolist(), strict=True):
            assert rt.min_raw <= r <= rt.max_raw
            assert value_of(r, rt) == op(value_of(x, a), value_of(y, b))


def test_sums_of_far_apart_binary_points_are_refused() -> None:
    a, b = FixedType.parse("ap_ufixed<23,-6>"), FixedType.parse("ap_ufixed<29,35>")
    with pytest.raises(UsageError, match=re.escape(
            "add_type(ap_ufixed<23,-6>, ap_ufixed<29,35>): the exact result ap_ufixed<65,36> "
            "is wider than 64 bits; cast an operand to a narrower format first")):
        add_type(a, b)
    with pytest.raises(UsageError, match=r"^sub_type\(.*ap_fixed<65,36> is wider than 64"):
        sub_type(a, b)
    assert str(mul_type(a, b)) == "ap_ufixed<52,29>"


def test_mixed_signedness_examples() -> None:
    s, u = FixedType.parse("ap_fixed<8,3>"), FixedType.parse("ap_ufixed<8,3>")
    assert str(add_type(s, u)) == "ap_fixed<10,5>"
    assert str(sub_type(u, u)) == "ap_fixed<9,4>"
    assert str(add_type(u, u)) == "ap_ufixed<9,4>"
    assert str(mul_type(s, u)) == "ap_fixed<16,6>"
    raw, rt = fixed_sub(np.array([0]), u, np.array([255]), u)
    assert raw.tolist() == [-255] and rt.signed


def test_wide_results_use_python_ints_and_too_wide_ones_are_refused() -> None:
    u32 = FixedType(32, 32, False)
    raw, rt = fixed_mul(np.array([u32.max_raw]), u32, np.array([u32.max_raw]), u32)
    assert str(rt) == "ap_ufixed<64,64>" and raw.tolist() == [u32.max_raw**2]
    with pytest.raises(UsageError, match="wider than 64 bits"):
        mul_type(FixedType(40, 4), FixedType(30, 2))


@settings(max_examples=60, deadline=None)
@given(term=formats(max_width=40), terms=st.integers(1, 1000), with_init=st.booleans(),
       init=formats(max_width=40))
def test_sum_type_holds_every_sum_exactly(term, terms, with_init, init) -> None:
    from vitaccel.fixed import sum_type

    init_t = init if with_init else None
    try:
        t = sum_type(term, terms, init_t)
    except UsageError:
        return  # over 64 bits: refused, never silently narrow
    parts = [term] + ([init_t] if with_init else [])
    lo = terms * term.min_value + (init_t.min_value if with_init else 0)
    hi = terms * term.max_value + (init_t.max_value if with_init else 0)
    assert t.min_value <= lo and hi <= t.max_value
    assert all(t.frac_bits >= p.frac_bits for p in parts)
