"""Result types of the cost model: per-node :class:`UnitCost` and :class:`Resources`."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BOUNDS", "NO_RESOURCES", "Resources", "Tally", "UnitCost"]

BOUNDS = ("compute", "memory")


@dataclass(frozen=True)
class Resources:
    """FPGA resources of one hardware unit (or of the whole design).

    Attributes
    ----------
    dsp : int
        DSP slices (DSP48E2 or DSP58).
    bram18 : int
        18 Kb block-RAM halves (two make one 36 Kb block; see :attr:`bram36`).
    uram : int
        288 Kb UltraRAM blocks.
    lut, ff : int
        CLB LUTs (logic, LUT multipliers, distributed RAM/ROM) and flip-flops.
    """

    dsp: int = 0
    bram18: int = 0
    uram: int = 0
    lut: int = 0
    ff: int = 0

    @property
    def bram36(self) -> float:
        """Block RAM in 36 Kb blocks (halves count 0.5)."""
        return self.bram18 / 2

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.dsp + other.dsp, self.bram18 + other.bram18,
                         self.uram + other.uram, self.lut + other.lut, self.ff + other.ff)

    def max(self, other: Resources) -> Resources:
        """Element-wise maximum (a shared unit sized for the largest node it serves)."""
        return Resources(max(self.dsp, other.dsp), max(self.bram18, other.bram18),
                         max(self.uram, other.uram), max(self.lut, other.lut),
                         max(self.ff, other.ff))

    def as_dict(self) -> dict[str, float]:
        """``{"dsp", "bram36", "uram", "lut", "ff"}`` (BRAM in 36 Kb blocks)."""
        return {"dsp": self.dsp, "bram36": self.bram36, "uram": self.uram, "lut": self.lut,
                "ff": self.ff}


NO_RESOURCES = Resources()


class Tally:
    """Mutable running sum of resources (cheap accumulation inside cost functions)."""

    __slots__ = ("dsp", "bram18", "uram", "lut", "ff")

    def __init__(self, lut: int = 0, ff: int = 0) -> None:
        self.dsp = self.bram18 = self.uram = 0
        self.lut, self.ff = lut, ff

    def mem(self, m: object) -> None:
        """Add a :class:`vitaccel.cost._hwmath.Memory`."""
        self.bram18 += m.bram18  # type: ignore[attr-defined]
        self.uram += m.uram  # type: ignore[attr-defined]
        self.lut += m.lut  # type: ignore[attr-defined]

    def mult(self, m: object, count: int) -> None:
        """Add ``count`` copies of a :class:`vitaccel.cost._hwmath.Mult` (DSPs rounded up)."""
        self.dsp += math.ceil(count * m.dsp)  # type: ignore[attr-defined]
        self.lut += count * m.lut  # type: ignore[attr-defined]

    def freeze(self) -> Resources:
        """The total as :class:`Resources`."""
        return Resources(self.dsp, self.bram18, self.uram, self.lut, self.ff)


@dataclass(frozen=True)
class UnitCost:
    """Estimated cost of one graph node on its hardware unit, for one image.

    Cycle counts are kernel-clock cycles. ``cycles`` is the structural count from the loop
    nest (trip counts times initiation interval); ``overhead_cycles`` the pipeline fill and
    drain added once per invocation of a pipelined loop; ``compute_cycles`` their sum.

    Attributes
    ----------
    name, op : str
        Node name and op kind.
    unit : str
        The hardware unit executing the node (``"linear_engine"``, ``"attention"``, ...);
        nodes of one unit share its hardware.
    cycles : int
        Structural compute cycles (no pipeline depth).
    overhead_cycles : int
        Pipeline depth (fill/drain) cycles added per invocation.
    phases : tuple of (str, int)
        Structural cycles by phase (e.g. ``("qk", 102168), ("av", 102168)``); they sum to
        ``cycles``.
    weight_bytes : int
        Parameter bytes read from DRAM for this image (0 when resident on chip).
    act_bytes : int
        Activation bytes read and written in DRAM for this image.
    memory_cycles : int
        Cycles the DRAM transfers take at the configured ports and board bandwidth.
    latency_cycles : int
        The node's contribution to the image latency (compute and memory overlapped or
        serialised as the weight buffering dictates).
    bound : str
        ``"compute"`` or ``"memory"``: which of the two sets ``latency_cycles``.
    macs : int
        Multiply-accumulates (or, for nonlinear units, element operations) per image.
    resources : Resources
        What the shared unit needs to execute this node (buffers sized for this node); the
        design's unit is the element-wise maximum over the nodes it executes.
    storage : Resources
        On-chip memory private to this node (resident weights), summed over nodes.
    dsp_pj, bram_pj, dram_pj, logic_pj : float
        Dynamic energy estimates, pJ: DSP MACs, block-RAM accesses, DRAM traffic, and LUT/FF
        switching of the unit while the node runs.
    aux : tuple of (str, Resources)
        Further shared units the node uses (e.g. the MoE router), aggregated like ``unit``.
    """

    name: str
    op: str
    unit: str
    cycles: int
    overhead_cycles: int
    phases: tuple[tuple[str, int], ...]
    weight_bytes: int
    act_bytes: int
    memory_cycles: int
    latency_cycles: int
    bound: str
    macs: int
    resources: Resources
    storage: Resources
    dsp_pj: float
    bram_pj: float
    dram_pj: float
    logic_pj: float
    aux: tuple[tuple[str, Resources], ...] = ()

    @property
    def compute_cycles(self) -> int:
        """Structural cycles plus pipeline overhead."""
        return self.cycles + self.overhead_cycles

    @property
    def dram_bytes(self) -> int:
        """All bytes moved to or from DRAM for this node (weights + activations)."""
        return self.weight_bytes + self.act_bytes

    @property
    def energy_pj(self) -> float:
        """Dynamic energy of the node, pJ (static energy is accounted per design)."""
        return self.dsp_pj + self.bram_pj + self.dram_pj + self.logic_pj
