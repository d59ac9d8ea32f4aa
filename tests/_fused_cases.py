"""Pieces shared by the fused-kernel property tests (GELU, LayerNorm): format strategies and
the patching that records which compiled loop ran."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import pytest
from hypothesis import strategies as st

from vitaccel.fixed import FixedType, Overflow, Rounding
from vitaccel.fixed import _kernels as core_kernels
from vitaccel.fixed import _specialise as specialise
from vitaccel.fixed._assign import all_short

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


@contextmanager
def recording_loops(kernels: ModuleType, parallel: bool) -> Iterator[list[bool]]:
    """Inside, ``kernels.all_short`` also appends its answer (the short loops ran) to the
    yielded list; with ``parallel`` even small inputs take the parallel compilation."""
    loops: list[bool] = []
    with pytest.MonkeyPatch.context() as mp:
        if parallel:
            mp.setattr(core_kernels, "PARALLEL_MIN_MACS", 0)
        mp.setattr(kernels, "all_short",
                   lambda casts: loops.append(all_short(casts)) or loops[-1])
        yield loops
