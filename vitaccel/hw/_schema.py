"""Frozen dataclasses describing a board and an accelerator configuration built on it.

Every field is validated on construction (also through ``dataclasses.replace``), so an
impossible object cannot exist. Validation failures raise
:class:`vitaccel.hw._checks.FieldError` (a :class:`vitaccel.errors.UsageError`) naming the
dotted key; the YAML loader adds the file and line in front.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vitaccel.hw._checks import Check, Choice, FieldError, Flag, Int, Real, Text, check_fields
from vitaccel.hw._power import EnergyModel, EnergyOverrides, default_energy_model
from vitaccel.ir import PRECISION_PRESETS as _PRESETS
from vitaccel.units import variant_registries

__all__ = [
    "AttentionConfig",
    "Board",
    "FAMILIES",
    "GELU_VARIANTS",
    "HwConfig",
    "LAYERNORM_VARIANTS",
    "LinearConfig",
    "MEMORY_TYPES",
    "MemoryConfig",
    "MoeConfig",
    "PRECISION_PRESETS",
    "SOFTMAX_VARIANTS",
    "VariantsConfig",
]

FAMILIES = ("zynq-ultrascale+", "virtex-ultrascale+", "versal-ai-core")
MEMORY_TYPES = ("ddr4", "lpddr4", "hbm2")
PRECISION_PRESETS = tuple(_PRESETS)
# Variant names as registered by the units (vitaccel.units), in registry order.
_REGISTRIES = variant_registries()
SOFTMAX_VARIANTS = tuple(_REGISTRIES["softmax"])
GELU_VARIANTS = tuple(_REGISTRIES["gelu"])
LAYERNORM_VARIANTS = tuple(_REGISTRIES["layernorm"])
WEIGHT_BUFFERING = ("single", "pingpong", "resident")
ATTENTION_ORDERS = ("standard", "reordered")
QK_KERNELS = ("mac", "binary")
AV_KERNELS = ("mac", "log2")
# AXI4 data-bus widths a Vitis HLS m_axi port can use towards the DRAM controller.
AXI_WIDTHS_BITS = (32, 64, 128, 256, 512, 1024)


def _f(check: Check, **kwargs: Any) -> Any:
    return field(metadata={"check": check}, **kwargs)


@dataclass(frozen=True)
class Board:
    """Facts about one FPGA board (vendor data sheets; sources in ``hw_configs/boards.yaml``).

    Attributes
    ----------
    name : str
        Short id used in configs and on the CLI (e.g. ``"zcu102"``).
    part : str
        Exact AMD/Xilinx ordering code of the device on the board (as in the data sheets).
    vivado_part : str
        The same device as Vivado / Vitis HLS name it (``set_part``, ``hls_config.cfg``).
    family : str
        One of :data:`FAMILIES`; selects DSP48E2 (UltraScale+) or DSP58 (Versal).
    dsp, bram36, uram, lut, ff : int
        Programmable-logic resources: DSP slices, 36 Kb block RAMs, 288 Kb UltraRAMs, CLB LUTs
        and CLB flip-flops of the whole device.
    memory_type : str
        Off-chip memory technology the accelerator streams from (:data:`MEMORY_TYPES`).
    dram_bandwidth_gbps : float
        Peak theoretical off-chip bandwidth available to the fabric, GB/s (10^9 bytes/s).
    default_clock_mhz, max_clock_mhz : float
        Usual kernel clock and a realistic upper bound for HLS designs on this part, MHz.
    static_power_w : float
        Estimated static device power (XPE-style typical estimate, not measured), W.
    """

    name: str = _f(Text())
    part: str = _f(Text())
    vivado_part: str = _f(Text())
    family: str = _f(Choice(FAMILIES))
    dsp: int = _f(Int(lo=1))
    bram36: int = _f(Int(lo=0))
    uram: int = _f(Int(lo=0))
    lut: int = _f(Int(lo=1))
    ff: int = _f(Int(lo=1))
    memory_type: str = _f(Choice(MEMORY_TYPES))
    dram_bandwidth_gbps: float = _f(Real(unit="GB/s"))
    default_clock_mhz: float = _f(Real(unit="MHz"))
    max_clock_mhz: float = _f(Real(unit="MHz"))
    static_power_w: float = _f(Real(strict=False, unit="W"))

    def __post_init__(self) -> None:
        check_fields(self)
        if self.default_clock_mhz > self.max_clock_mhz:
            raise FieldError(
                "default_clock_mhz",
                f"a clock <= max_clock_mhz ({self.max_clock_mhz:g} MHz)",
                self.default_clock_mhz,
            )

    @property
    def dsp_kind(self) -> str:
        """``"dsp58"`` on Versal (27x24 multiplier), else ``"dsp48e2"`` (27x18)."""
        return "dsp58" if self.family == "versal-ai-core" else "dsp48e2"


@dataclass(frozen=True)
class LinearConfig:
    """The unified linear engine: ``tile_in x tile_out`` MACs per cycle.

    Attributes
    ----------
    tile_in, tile_out : int
        Input / output channels consumed / produced per cycle.
    weight_buffering : str
        ``"single"`` (load, then compute), ``"pingpong"`` (load the next weight tile while
        computing) or ``"resident"`` (all weights stay on chip; loaded once).
    pipeline_ii : int
        Initiation interval of the inner MAC loop, cycles.
    """

    tile_in: int = _f(Int(lo=1))
    tile_out: int = _f(Int(lo=1))
    weight_buffering: str = _f(Choice(WEIGHT_BUFFERING))
    pipeline_ii: int = _f(Int(lo=1), default=1)

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def macs_per_cycle(self) -> int:
        """Peak multiply-accumulates per cycle (``tile_in * tile_out / pipeline_ii`` floored)."""
        return self.tile_in * self.tile_out // self.pipeline_ii


@dataclass(frozen=True)
class AttentionConfig:
    """The attention unit (QK^T, softmax, A.V).

    Attributes
    ----------
    order : str
        ``"standard"`` (each query row meets keys 0..N-1) or ``"reordered"`` (Edge-MoE's
        staggered, constant-bandwidth order).
    parallel_queries : int
        Query rows processed concurrently (Edge-MoE's P).
    head_dim_lanes : int
        Head-dimension elements consumed per cycle (Edge-MoE: 8, i.e. dim/8 cycles per dot).
    qk_kernel : str
        ``"mac"`` (multipliers) or ``"binary"`` (ShiftAddViT: popcount of +-1 Q/K codes).
    av_kernel : str
        ``"mac"`` or ``"log2"`` (FQ-ViT: power-of-two probabilities, A.V by shifts).
    """

    order: str = _f(Choice(ATTENTION_ORDERS))
    parallel_queries: int = _f(Int(lo=1))
    head_dim_lanes: int = _f(Int(lo=1))
    qk_kernel: str = _f(Choice(QK_KERNELS), default="mac")
    av_kernel: str = _f(Choice(AV_KERNELS), default="mac")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class VariantsConfig:
    """Which implementation each nonlinear unit uses (names of the unit registries)."""

    softmax: str = _f(Choice(SOFTMAX_VARIANTS))
    gelu: str = _f(Choice(GELU_VARIANTS))
    layernorm: str = _f(Choice(LAYERNORM_VARIANTS))

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class MemoryConfig:
    """The accelerator's off-chip interface.

    Attributes
    ----------
    dram_port_width_bits : int
        Data width of each AXI master port, bits (one of 32, 64, ..., 1024).
    num_dram_ports : int
        Independent AXI master ports used concurrently.
    """

    dram_port_width_bits: int = _f(Int(choices=AXI_WIDTHS_BITS))
    num_dram_ports: int = _f(Int(lo=1))

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class MoeConfig:
    """Mixture-of-experts execution.

    Attributes
    ----------
    patch_reordering : bool
        Gather the tokens routed to each expert and run them together, so each active
        expert's weights are loaded once per layer (Edge-MoE); ``False`` loads an expert's
        weights for every token routed to it.
    expert_weight_buffering : str
        ``"single"`` or ``"pingpong"`` (prefetch the next expert while computing this one).
    max_active_experts : int or None
        Experts assumed active per MoE layer when no simulated expert load is supplied
        (worst case); ``None`` means all experts of the layer.
    """

    patch_reordering: bool = _f(Flag(), default=True)
    expert_weight_buffering: str = _f(Choice(("single", "pingpong")), default="pingpong")
    max_active_experts: int | None = _f(Int(lo=1, optional=True), default=None)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class HwConfig:
    """How the accelerator is built: board, clock, unit sizes and variants.

    Attributes
    ----------
    name : str
        Config id (the YAML file stem for shipped configs).
    board : Board
        Target board.
    clock_mhz : float
        Kernel clock, MHz; at most ``board.max_clock_mhz``.
    precision : str
        Default precision preset (:data:`PRECISION_PRESETS`).
    linear, attention, variants, memory, moe
        Unit sections (see their classes).
    energy : EnergyOverrides
        Per-config replacements of the board's default energy coefficients.
    description : str
        One line for humans.
    """

    name: str = _f(Text())
    board: Board = field()
    clock_mhz: float = _f(Real(unit="MHz"))
    precision: str = _f(Choice(PRECISION_PRESETS))
    linear: LinearConfig = field()
    attention: AttentionConfig = field()
    variants: VariantsConfig = field()
    memory: MemoryConfig = field()
    moe: MoeConfig = field(default_factory=MoeConfig)
    energy: EnergyOverrides = field(default_factory=EnergyOverrides)
    description: str = _f(Text(allow_empty=True), default="")

    def __post_init__(self) -> None:
        check_fields(self)
        for key, cls in (
            ("board", Board),
            ("linear", LinearConfig),
            ("attention", AttentionConfig),
            ("variants", VariantsConfig),
            ("memory", MemoryConfig),
            ("moe", MoeConfig),
            ("energy", EnergyOverrides),
        ):
            if not isinstance(getattr(self, key), cls):
                raise FieldError(key, f"a {cls.__name__}", getattr(self, key))
        if self.clock_mhz > self.board.max_clock_mhz:
            raise FieldError(
                "clock_mhz",
                f"a clock <= {self.board.max_clock_mhz:g} MHz "
                f"(max_clock_mhz of board {self.board.name})",
                self.clock_mhz,
            )

    @property
    def clock_period_ns(self) -> float:
        """Kernel clock period, ns."""
        return 1e3 / self.clock_mhz

    @property
    def port_bandwidth_gbps(self) -> float:
        """Peak bandwidth of the configured AXI ports at ``clock_mhz``, GB/s."""
        bytes_per_cycle = self.memory.dram_port_width_bits // 8 * self.memory.num_dram_ports
        return bytes_per_cycle * self.clock_mhz * 1e-3

    @property
    def dram_bandwidth_gbps(self) -> float:
        """Usable peak off-chip bandwidth: the lesser of the ports' and the board's, GB/s."""
        return min(self.port_bandwidth_gbps, self.board.dram_bandwidth_gbps)

    @property
    def energy_model(self) -> EnergyModel:
        """The board's default energy coefficients with this config's overrides applied."""
        base = default_energy_model(self.board.family, self.board.memory_type)
        return self.energy.apply(base)
