"""Resource primitives of the cost model: multipliers, memories, ROMs and logic coefficients.

Everything here is an ESTIMATE of what Vitis HLS and Vivado typically produce, with the
coefficients stated next to each rule; synthesis results differ by design details.

Multipliers (:func:`multiplier`)
    * DSP48E2 (UltraScale+) multiplies 27x18 signed, DSP58 (Versal) 27x24. An operand of an
      unsigned format needs one more bit to be signed. A WxV product takes
      ``min(ceil(W/27) * ceil(V/18), ceil(V/27) * ceil(W/18))`` DSP48E2 (the better
      orientation; 18 becomes 24 on DSP58).
    * Products whose operands are both at most :data:`PACK_BITS` (8) bits and that share one
      operand with a neighbouring product (the linear engine's input broadcast, the attention
      unit's score broadcast) pack two per DSP (AMD WP486 INT8 packing).
    * Other products with both operands at most :data:`LUT_MUL_BITS` (10) bits go to LUTs,
      about ``W * V / 2`` LUT6 per multiplier (a radix-4 array multiplier).
    * Power-of-two weights (shift/add) need no multiplier: a barrel shifter of about
      ``W * ceil(log2(shifts))`` LUTs plus a ``W``-bit adder/negator.

Memories (:func:`memory`)
    A buffer is split into ``banks`` independent memories (HLS ``array_partition``); each bank
    of ``depth`` words of ``width`` bits becomes distributed RAM (LUTRAM: one LUT6 per bit
    of width per 64 words) when it holds at most :data:`LUTRAM_MAX_BITS` bits or is at most
    :data:`LUTRAM_MAX_DEPTH` deep, otherwise the fewest 18 Kb block-RAM
    halves over the aspect ratios 16Kx1 ... 512x36 (a BRAM36 is two BRAM18). When the config's
    board has UltraRAM and a bank is at least :data:`URAM_MIN_BITS` bits, it goes to 288 Kb
    UltraRAM (4K x 72) instead. A buffer of ``k`` banks thus uses at least ``k`` memories.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

__all__ = [
    "LOGIC",
    "LUTRAM_MAX_BITS",
    "LUTRAM_MAX_DEPTH",
    "LUT_MUL_BITS",
    "PACK_BITS",
    "URAM_MIN_BITS",
    "Logic",
    "Memory",
    "Mult",
    "dsp_per_product",
    "memory",
    "multiplier",
    "signed_bits",
    "storage_bytes",
]

PACK_BITS = 8
"""Operands up to this width (both) pack two products sharing an operand into one DSP."""
LUT_MUL_BITS = 10
"""Products with both operands up to this width are built from LUTs (when not packed)."""
LUTRAM_MAX_BITS = 1024
"""Memory banks up to this many bits are distributed RAM/ROM (LUTs), not block RAM."""
LUTRAM_MAX_DEPTH = 64
"""Banks at most this deep are distributed RAM whatever their width (one LUT6 per bit)."""
URAM_MIN_BITS = 64 * 1024
"""Banks of at least this many bits go to UltraRAM when the board has it."""
LUTRAM_BITS_PER_LUT = 64
_BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
_URAM_DEPTH, _URAM_WIDTH = 4096, 72


@dataclass(frozen=True)
class Mult:
    """Cost of ONE multiplier: DSP slices (0.5 when packed two per DSP) and LUTs."""

    dsp: float
    lut: int


@dataclass(frozen=True)
class Memory:
    """Cost of one partitioned buffer: BRAM18 halves, UltraRAMs and LUTs (LUTRAM)."""

    bram18: int
    uram: int
    lut: int


@dataclass(frozen=True)
class Logic:
    """Per-element LUT/FF coefficients (documented estimates, UltraScale+ LUT6 fabric).

    Attributes
    ----------
    lut_per_adder_bit, ff_per_register_bit : float
        One LUT per bit of a carry-chain adder; one FF per pipelined register bit.
    lut_per_mux_bit : float
        A 2:1 multiplexer bit (select/compare logic) costs half a LUT6.
    control_lut, control_ff : int
        Fixed control, loop counters and handshake logic of one hardware unit.
    axi_port_lut, axi_port_ff : int
        One AXI4 master port with its read/write channels and burst logic (Vitis HLS m_axi).
    """

    lut_per_adder_bit: float = 1.0
    ff_per_register_bit: float = 1.0
    lut_per_mux_bit: float = 0.5
    control_lut: int = 1500
    control_ff: int = 2000
    axi_port_lut: int = 1800
    axi_port_ff: int = 2600


LOGIC = Logic()


def signed_bits(width: int, signed: bool) -> int:
    """Bits of a signed operand holding the format (unsigned formats need one more)."""
    return width if signed else width + 1


@functools.lru_cache(maxsize=4096)
def dsp_per_product(a_bits: int, b_bits: int, dsp_kind: str = "dsp48e2") -> int:
    """DSP slices for one signed ``a_bits x b_bits`` product, best orientation.

    >>> dsp_per_product(16, 16), dsp_per_product(32, 16), dsp_per_product(32, 32)
    (1, 2, 4)
    """
    b_max = 24 if dsp_kind == "dsp58" else 18
    one = math.ceil(a_bits / 27) * math.ceil(b_bits / b_max)
    other = math.ceil(b_bits / 27) * math.ceil(a_bits / b_max)
    return min(one, other)


@functools.lru_cache(maxsize=4096)
def multiplier(a_bits: int, b_bits: int, *, shared_operand: bool, pow2_b: bool = False,
               pow2_shifts: int = 0, dsp_kind: str = "dsp48e2") -> Mult:
    """Cost of one multiplier of signed widths ``a_bits x b_bits`` (module docstring rules).

    Parameters
    ----------
    a_bits, b_bits : int
        Signed operand widths, bits (see :func:`signed_bits`).
    shared_operand : bool
        The product shares an operand with another product issued in the same cycle
        (a condition of INT8 packing).
    pow2_b : bool
        ``b`` is a power-of-two weight ``sign * 2**p``; ``pow2_shifts`` distinct ``p``.
    """
    if pow2_b:
        shift_lut = a_bits * max(1, math.ceil(math.log2(max(2, pow2_shifts))))
        return Mult(0.0, shift_lut + a_bits)
    if shared_operand and a_bits <= PACK_BITS and b_bits <= PACK_BITS:
        return Mult(0.5, 0)
    if a_bits <= LUT_MUL_BITS and b_bits <= LUT_MUL_BITS:
        return Mult(0.0, math.ceil(a_bits * b_bits / 2))
    return Mult(float(dsp_per_product(a_bits, b_bits, dsp_kind)), 0)


def _bram18_per_bank(depth: int, width: int) -> int:
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in _BRAM18_SHAPES)


@functools.lru_cache(maxsize=4096)
def memory(depth: int, width: int, banks: int = 1, *, uram_available: bool = False) -> Memory:
    """Memories for a buffer of ``banks`` banks, each ``depth`` words of ``width`` bits.

    Returns
    -------
    Memory
        BRAM18 halves, UltraRAM blocks and LUTs (distributed RAM) of the whole buffer.
    """
    if depth <= 0 or width <= 0 or banks <= 0:
        return Memory(0, 0, 0)
    bits = depth * width
    if bits <= LUTRAM_MAX_BITS or depth <= LUTRAM_MAX_DEPTH:
        return Memory(0, 0, banks * width * math.ceil(depth / LUTRAM_BITS_PER_LUT))
    if uram_available and bits >= URAM_MIN_BITS:
        per_bank = math.ceil(depth / _URAM_DEPTH) * math.ceil(width / _URAM_WIDTH)
        return Memory(0, banks * per_bank, 0)
    return Memory(banks * _bram18_per_bank(depth, width), 0, 0)


def storage_bytes(width: int) -> int:
    """Bytes one value of ``width`` bits occupies in DRAM (HLS rounds to 1, 2, 4 or 8)."""
    nbytes = math.ceil(width / 8)
    return 1 << (nbytes - 1).bit_length()
