"""Drawing design points from a space's axes: grid, random and Latin-hypercube sampling.

Every method is deterministic for a given space and seed, so a point's id (its index in the
drawn list) is stable across runs; that is what makes sweeps resumable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vitaccel.dse._space import Space

__all__ = ["sample_points"]


def _decode(index: int, sizes: list[int]) -> tuple[int, ...]:
    """Mixed-radix digits of ``index`` (first axis slowest, like ``itertools.product``)."""
    digits = []
    for size in reversed(sizes):
        index, d = divmod(index, size)
        digits.append(d)
    return tuple(reversed(digits))


def _grid(sizes: list[int]) -> list[tuple[int, ...]]:
    total = int(np.prod(sizes, dtype=object))
    return [_decode(i, sizes) for i in range(total)]


def _random(sizes: list[int], n: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    total = int(np.prod(sizes, dtype=object))
    if n >= total:
        return _grid(sizes)
    if total <= 8 * n:
        return [_decode(int(i), sizes) for i in np.sort(rng.choice(total, size=n, replace=False))]
    # Sparse draw: rejection of repeated combinations (the grid may exceed int64).
    seen: set[tuple[int, ...]] = set()
    while len(seen) < n:
        seen.add(tuple(int(rng.integers(s)) for s in sizes))
    return sorted(seen)


def _lhs(sizes: list[int], n: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """``n`` strata per axis, one sample in each, strata permuted independently per axis."""
    columns = []
    for size in sizes:
        u = (rng.permutation(n) + rng.random(n)) / n
        columns.append(np.minimum((u * size).astype(np.int64), size - 1))
    out: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    for row in zip(*columns, strict=True):
        t = tuple(int(v) for v in row)
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def sample_points(space: Space) -> list[dict[str, Any]]:
    """The space's points in their stable order, as ``{axis key: value}`` dicts.

    Grid: every combination, first axis slowest. Random: ``n`` distinct combinations drawn
    uniformly without replacement (the whole grid when ``n`` covers it), in grid order.
    Latin hypercube: ``n`` samples whose projection on every axis covers the axis' values in
    equal strata; duplicate combinations (possible on short axes) are dropped, keeping the
    first. The reference point (the base design) is not included here.
    """
    sizes = [len(a.values) for a in space.axes]
    method, n = space.sampling.method, space.sampling.n
    rng = np.random.default_rng(space.sampling.seed)
    if method == "grid":
        idx = _grid(sizes)
    elif method == "random":
        idx = _random(sizes, int(n), rng)
    else:
        idx = _lhs(sizes, int(n), rng)
    return [{a.key: a.values[i] for a, i in zip(space.axes, digits, strict=True)}
            for digits in idx]
