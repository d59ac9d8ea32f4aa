"""Fused kernels compiled once per parameter set, with every format constant folded in.

A fused kernel reads dozens of packed integers per row (shift amounts, ranges, rounding and
overflow modes of each assignment); as run-time values they crowd the registers and every
mode branch stays in the loop. So a kernel is written once, as a factory ``make(consts)``
whose body gets its parameters from :func:`constants_or`:

* ``make(None)`` is the *general* kernel: the parameters are read from the packed int64
  array at run time; it is compiled once for every format (small calls, tests).
* ``make(consts)``, with ``consts`` the same parameters as a nested tuple of Python ints, is
  the *specialised* kernel: numba freezes a closure's variables as compile-time constants,
  so LLVM folds every mode branch and shift. It costs one compilation (seconds) per
  parameter set, kept in numba's on-disk cache (whose index key includes the closure's
  values), so only calls large enough for the parallel loop take it.

Both are the same source, so they compute the same bits; the tests compare them.
"""

from __future__ import annotations

import functools
import types as pytypes
from collections.abc import Callable

import numpy as np
from numba import njit, types
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.compiler_machinery import FunctionPass, register_pass
from numba.core.untyped_passes import TranslateByteCode
from numba.extending import overload

from vitaccel.fixed._kernels import PARALLEL_MIN_MACS

__all__ = ["SPECIALISE_MIN", "Fused", "cast_at", "constants_or", "flat_params", "span_kernel"]

SPECIALISE_MIN = PARALLEL_MIN_MACS
"""Calls on at least this many elements run the specialised kernel (on the thread pool)."""


def constants_or(consts, read, params):
    """``consts`` when it is a tuple (a compile-time constant of a specialised kernel), else
    ``read(params)``: the packed parameters read at run time (the general kernel)."""
    raise NotImplementedError("compiled code only")


@overload(constants_or, inline="always")
def _constants_or(consts, read, params):
    if isinstance(consts, types.NoneType):
        return lambda consts, read, params: read(params)
    return lambda consts, read, params: consts


_CAST_LEN = 14  # ints per packed assignment (vitaccel.fixed._kernels.cast_params)


def flat_params(*parts: object) -> np.ndarray:
    """Packed parameters (ints and nested tuples of ints, such as
    :func:`~vitaccel.fixed._assign.assign_params`) as one int64 array, in order.

    Numba's parallel loops take no tuple arguments, so a kernel gets this array and its
    reader (:class:`Fused`) rebuilds the tuples, with :func:`cast_at` for assignments.
    """
    out: list[int] = []

    def walk(p: object) -> None:
        if isinstance(p, tuple):
            for q in p:
                walk(q)
        else:
            out.append(int(p))

    walk(parts)
    return np.array(out, dtype=np.int64)


@njit(cache=True)
def cast_at(p, i):
    """The :func:`~vitaccel.fixed._assign.assign_params` tuple stored at ``p[i:i + 14]`` and
    the offset after it."""
    return (p[i], p[i + 1], p[i + 2], p[i + 3], p[i + 4], p[i + 5], p[i + 6], p[i + 7],
            p[i + 8], p[i + 9], p[i + 10], p[i + 11], p[i + 12], p[i + 13]), i + _CAST_LEN


def _ints(value: object) -> object:
    """``value`` (nested tuples of numpy or Python integers) with Python ints throughout."""
    if isinstance(value, tuple):
        return tuple(_ints(v) for v in value)
    return int(value)


@functools.cache
def _specialised(make: Callable, consts: tuple):
    func = make(consts)
    twin = pytypes.FunctionType(func.__code__, func.__globals__, f"{func.__name__}_specialised",
                                closure=func.__closure__)
    twin.__qualname__ = f"{func.__qualname__}_specialised"
    return njit(parallel=True, cache=True)(twin)


class Fused:
    """A fused kernel: the factory ``make``, the compiled reader of its packed parameters
    ``read`` (``read(params) -> nested tuple``, the value ``make``'s body gets from
    :func:`constants_or`) and the general kernel's (serial) compilation."""

    def __init__(self, make: Callable, read) -> None:
        self.make = make
        self.read = read
        self.general = njit(cache=True)(make(None))
        self._by_params: dict[bytes, object] = {}

    def kernel(self, size: int, params: np.ndarray):
        """The compilation to run on ``size`` elements whose packed parameters are ``params``:
        the specialised parallel kernel for calls of at least ``SPECIALISE_MIN`` elements, the
        general serial one below."""
        if size < SPECIALISE_MIN:
            return self.general
        key = params.tobytes()
        kernel = self._by_params.get(key)
        if kernel is None:
            kernel = self._by_params[key] = _specialised(self.make, _ints(self.read(params)))
        return kernel


@register_pass(mutates_CFG=False, analysis_only=True)
class _NoAlias(FunctionPass):
    """Marks the function's array arguments ``noalias`` (numba's ``Flags.noalias``)."""

    _name = "vitaccel_noalias"

    def __init__(self) -> None:
        FunctionPass.__init__(self)

    def run_pass(self, state) -> bool:
        state.flags.noalias = True
        return False


class _NoAliasCompiler(CompilerBase):
    def define_pipelines(self) -> list:
        pm = DefaultPassBuilder.define_nopython_pipeline(self.state)
        pm.add_pass_after(_NoAlias, TranslateByteCode)
        pm.finalize()
        return [pm]


def span_kernel(func: Callable):
    """Compile ``func``, the loop over one span of an element-wise fused kernel, for
    vectorisation: its array arguments are declared ``noalias`` and it is inlined into its
    caller (where a specialised kernel's constant parameters fold into it).

    A loop that reads a ROM at a computed index and writes an output array is vectorised
    by LLVM (with gathers) only when it knows the two do not overlap, and numba's parallel
    loop bodies never tell it. So a caller must pass arrays that share no memory; the fused
    kernels pass their inputs, their ROMs and an output they allocated.
    """
    return njit(cache=True, forceinline=True, pipeline_class=_NoAliasCompiler)(func)
