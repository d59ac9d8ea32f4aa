"""Hardware side of vitaccel: boards and accelerator configurations.

A :class:`HwConfig` says *how* the accelerator is built (board, clock, linear-engine tiles,
attention parallelism, unit variants, buffering, DRAM ports, MoE execution); the graph says
*what* is computed. Configs live in ``hw_configs/*.yaml`` and are loaded with
:func:`load_hw_config`; design-space exploration evolves them with :func:`with_knob`.

Board facts come from vendor data sheets (sources next to each figure in
``hw_configs/boards.yaml``); power and energy coefficients are documented estimates
(:mod:`vitaccel.hw._power`), not measurements.
"""

from vitaccel.hw._loader import (
    DEFAULT_HW_CONFIG,
    list_boards,
    list_hw_configs,
    load_board,
    load_hw_config,
    with_knob,
)
from vitaccel.hw._power import EnergyModel, EnergyOverrides
from vitaccel.hw._schema import (
    AttentionConfig,
    Board,
    HwConfig,
    LinearConfig,
    MemoryConfig,
    MoeConfig,
    VariantsConfig,
)

__all__ = [
    "DEFAULT_HW_CONFIG",
    "AttentionConfig",
    "Board",
    "EnergyModel",
    "EnergyOverrides",
    "HwConfig",
    "LinearConfig",
    "MemoryConfig",
    "MoeConfig",
    "VariantsConfig",
    "list_boards",
    "list_hw_configs",
    "load_board",
    "load_hw_config",
    "with_knob",
]
