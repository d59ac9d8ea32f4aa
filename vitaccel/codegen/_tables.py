"""ROMs (from the simulator's own ``Table`` objects) and the packed parameter stream."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vitaccel.codegen._names import TypeTable, rom_code_type
from vitaccel.fixed import FixedType
from vitaccel.ir import Param
from vitaccel.units.tables import Table

__all__ = ["RomTable", "WeightPacker", "WORD_BITS", "lane_bits"]

WORD_BITS = 64
"""Width of one word of ``weights.bin`` and of the kernel's ``weights`` m_axi port."""


@dataclass
class RomTable:
    """Distinct ROMs of the design; identical tables (same format and codes) are shared."""

    types: TypeTable
    roms: list[dict] = field(default_factory=list)
    _index: dict[tuple, dict] = field(default_factory=dict)

    def add(self, table: Table) -> dict:
        """Register ``table``; return the template fields of its interpolation call.

        Keys: ``rom`` (array name), ``rom_t`` (typedef of the sample format), ``size``,
        ``xfb`` (index fractional bits), ``fb`` (interpolation fraction bits), ``x0`` (first
        grid point code), ``last`` (``(size - 1) << fb``).
        """
        key = (table.name, str(table.fmt), table.x0_raw, table.x_frac_bits, table.step_log2,
               table.values.tobytes())
        hit = self._index.get(key)
        if hit is not None:
            return hit
        k = sum(1 for r in self.roms if r["table_name"] == table.name)
        name = f"ROM_{table.name.upper()}_{k}"
        rom_t = self.types.add(f"rom_{table.name}_{k}_t", table.fmt,
                               f"samples of ROM {name}")
        entry = {
            "table_name": table.name,
            "rom": name,
            "rom_t": rom_t,
            "code_t": rom_code_type(table.fmt),
            "size": table.size,
            "xfb": table.x_frac_bits,
            "fb": table.fraction_bits,
            "x0": table.x0_raw,
            "last": (table.size - 1) << table.fraction_bits,
            "step_log2": table.step_log2,
            "fmt": str(table.fmt),
            "codes": [int(v) for v in table.values],
        }
        self.roms.append(entry)
        self._index[key] = entry
        return entry


def lane_bits(fmt: FixedType) -> int:
    """Bits one element of ``fmt`` occupies in a word: the smallest of 8, 16, 32, 64 >= W."""
    for lane in (8, 16, 32, 64):
        if fmt.width <= lane:
            return lane
    raise ValueError(f"parameter format {fmt} is wider than {WORD_BITS} bits")


@dataclass
class WeightPacker:
    """Lays out every parameter tensor in one stream of 64-bit little-endian words.

    Each tensor starts on a word boundary; its raw codes (row-major, two's complement cut to
    the format's width) fill lanes of ``lane_bits(fmt)`` bits, lane 0 in the least significant
    bits of a word.
    """

    chunks: list[np.ndarray] = field(default_factory=list)
    entries: list[dict] = field(default_factory=list)
    words: int = 0

    def add(self, owner: str, key: str, param: Param) -> dict:
        """Append ``param``; return its template fields ``offset`` (words), ``lane``, ``count``."""
        lane = lane_bits(param.fmt)
        per_word = WORD_BITS // lane
        codes = np.asarray(param.raw, dtype=np.int64).reshape(-1).view(np.uint64)
        mask = np.uint64((1 << param.fmt.width) - 1)
        count = int(codes.size)
        nwords = -(-count // per_word)
        packed = np.zeros(nwords, dtype=np.uint64)
        if count:
            u = codes & mask
            u = np.concatenate([u, np.zeros(nwords * per_word - count, dtype=np.uint64)])
            lanes = u.reshape(nwords, per_word)
            shifts = (np.arange(per_word, dtype=np.uint64) * np.uint64(lane))
            packed = np.bitwise_or.reduce(lanes << shifts[None, :], axis=1).astype(np.uint64)
        entry = {"owner": owner, "key": key, "offset": self.words, "lane": lane, "count": count,
                 "words": nwords, "fmt": str(param.fmt), "shape": list(param.shape)}
        self.chunks.append(packed)
        self.entries.append(entry)
        self.words += nwords
        return entry

    def to_bytes(self) -> bytes:
        """The whole stream (``weights.bin``)."""
        if not self.chunks:
            return np.zeros(1, dtype="<u8").tobytes()
        return np.concatenate(self.chunks).astype("<u8").tobytes()
