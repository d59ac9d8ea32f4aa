"""Pieces shared by the fused-kernel property tests (softmax, GELU, LayerNorm): format
strategies, the patching that picks the general or the specialised compilation, and the
comparison of a unit's results with its definition."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import strategies as st

from vitaccel.fixed import FixedType, Overflow, Rounding
from vitaccel.fixed import _specialise as specialise

SHORT_ROUNDING = [Rounding.TRN, Rounding.RND]  # the modes of the kernels' short path
SHORT_OVERFLOW = [Overflow.WRAP, Overflow.SAT]


@st.composite
def fmt(draw, widths, ints, signed: bool | None = None, short: bool = False) -> FixedType:
    """A format with any rounding and an overflow mode allowed for its signedness (with
    ``short``, only the modes of the short path: AP_TRN/AP_RND, AP_WRAP (N = 0)/AP_SAT)."""
    s = draw(st.booleans()) if signed is None else signed
    modes = SHORT_OVERFLOW if short else [m for m in Overflow if s or m is not Overflow.WRAP_SM]
    o = draw(st.sampled_from(modes))
    w = draw(widths)
    wraps = o in (Overflow.WRAP, Overflow.WRAP_SM) and not short
    n = draw(st.integers(0, min(w, 3))) if wraps else 0
    r = draw(st.sampled_from(SHORT_ROUNDING if short else list(Rounding)))
    return FixedType(w, draw(ints), s, r, o, n)


@contextmanager
def specialising(on: bool = True) -> Iterator[None]:
    """Inside, every fused-kernel call runs the specialised compilation (``on``) or the
    general one (not ``on``), whatever its size."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(specialise, "SPECIALISE_MIN", 0 if on else 1 << 62)
        yield


def assert_same_results(want: np.ndarray, want_ovf: dict[str, int],
                        forward: tuple[np.ndarray, dict[str, int]],
                        kernel: tuple[np.ndarray | None, dict[str, int]]) -> bool:
    """The unit's public result ``forward`` (codes, overflow counts) equals the definition's
    (same codes, dtype, shape and counts), and so does the fused ``kernel``'s where it
    applied (codes not None). Returns whether it applied."""
    fwd, fwd_ovf = forward
    np.testing.assert_array_equal(fwd, want)
    assert fwd.dtype == want.dtype and fwd.shape == want.shape and fwd_ovf == want_ovf
    got, got_ovf = kernel
    if got is not None:
        np.testing.assert_array_equal(got, want)
        assert got_ovf == want_ovf
    return got is not None
