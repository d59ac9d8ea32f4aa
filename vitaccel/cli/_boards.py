"""``vitaccel boards``: list the shipped boards and hardware configs, or check one config."""

from __future__ import annotations

import argparse
import dataclasses
import json

__all__ = ["register"]


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        out = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(
            zip(cells, widths, strict=True))]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _boards_table() -> str:
    from vitaccel.hw import list_boards, load_board

    rows = []
    for name in list_boards():
        b = load_board(name)
        rows.append([
            b.name, b.part, f"{b.dsp:,}", f"{b.bram36:,}", f"{b.uram:,}", f"{b.lut:,}",
            f"{b.ff:,}", f"{b.dram_bandwidth_gbps:g} ({b.memory_type})",
            f"{b.default_clock_mhz:g}/{b.max_clock_mhz:g}", f"{b.static_power_w:g}",
        ])
    headers = ["board", "part", "DSP", "BRAM36", "URAM", "LUT", "FF", "DRAM GB/s",
               "clock MHz (default/max)", "static W*"]
    return _table(headers, rows, right={2, 3, 4, 5, 6, 7, 9})


def _configs_table() -> str:
    from vitaccel.hw import DEFAULT_HW_CONFIG, list_hw_configs, load_hw_config

    rows = []
    for name in list_hw_configs():
        c = load_hw_config(name)
        rows.append([
            name + (" (default)" if name == DEFAULT_HW_CONFIG else ""), c.board.name,
            f"{c.clock_mhz:g}", c.precision, f"{c.linear.tile_in}x{c.linear.tile_out}",
            f"{c.attention.order} P={c.attention.parallel_queries}",
            f"{c.variants.softmax}/{c.variants.gelu}/{c.variants.layernorm}",
            f"{c.dram_bandwidth_gbps:g}",
        ])
    headers = ["config", "board", "MHz", "precision", "linear", "attention",
               "softmax/gelu/layernorm", "DRAM GB/s"]
    return _table(headers, rows, right={2, 7})


def _describe(name_or_path: str) -> str:
    from vitaccel.hw import load_hw_config

    c = load_hw_config(name_or_path)
    b = c.board
    e = c.energy_model
    lines = [
        f"{c.name}: {c.description}" if c.description else c.name,
        f"  board      {b.name} ({b.part}, Vivado part {b.vivado_part}, {b.family}, "
        f"{b.dsp_kind})",
        f"  resources  DSP {b.dsp:,}  BRAM36 {b.bram36:,}  URAM {b.uram:,}  LUT {b.lut:,}  "
        f"FF {b.ff:,}",
        f"  clock      {c.clock_mhz:g} MHz (board max {b.max_clock_mhz:g} MHz)",
        f"  precision  {c.precision}",
        f"  linear     {c.linear.tile_in}x{c.linear.tile_out} MACs/cycle, II "
        f"{c.linear.pipeline_ii}, {c.linear.weight_buffering} weights",
        f"  attention  {c.attention.order}, P={c.attention.parallel_queries}, "
        f"{c.attention.head_dim_lanes} head-dim lanes",
        f"  variants   softmax={c.variants.softmax} gelu={c.variants.gelu} "
        f"layernorm={c.variants.layernorm}",
        f"  memory     {c.memory.num_dram_ports} x {c.memory.dram_port_width_bits}-bit ports = "
        f"{c.port_bandwidth_gbps:g} GB/s; board {b.dram_bandwidth_gbps:g} GB/s "
        f"({b.memory_type}); usable {c.dram_bandwidth_gbps:g} GB/s",
        f"  moe        patch_reordering={c.moe.patch_reordering} "
        f"expert_weight_buffering={c.moe.expert_weight_buffering} "
        f"max_active_experts={c.moe.max_active_experts}",
        f"  energy*    DSP MAC {e.dsp_mac_pj:g} pJ, BRAM36 access {e.bram36_access_pj:g} pJ, "
        f"URAM access {e.uram_access_pj:g} pJ, DRAM {e.dram_pj_per_byte:g} pJ/B, "
        f"LUT {e.lut_mw_per_k_at_100mhz:g} mW/1k@100MHz, FF {e.ff_mw_per_k_at_100mhz:g} "
        f"mW/1k@100MHz; static {b.static_power_w:g} W",
    ]
    return "\n".join(lines)


def _as_json(hw: str | None) -> str:
    from vitaccel.hw import list_boards, list_hw_configs, load_board, load_hw_config

    if hw is not None:
        return json.dumps(dataclasses.asdict(load_hw_config(hw)), indent=2)
    doc = {
        "boards": [dataclasses.asdict(load_board(n)) for n in list_boards()],
        "configs": [dataclasses.asdict(load_hw_config(n)) for n in list_hw_configs()],
    }
    return json.dumps(doc, indent=2)


_FOOTNOTE = ("* power and energy figures are XPE-style estimates, not measurements; "
             "sources of the board facts: hw_configs/boards.yaml")


def _run(args: argparse.Namespace) -> int:
    if args.json:
        print(_as_json(args.hw))
    elif args.hw is not None:
        print(_describe(args.hw))
        print(_FOOTNOTE)
    else:
        print("Boards")
        print(_boards_table())
        print()
        print("Hardware configs (vitaccel ... --hw NAME, or the path of a .yaml file)")
        print(_configs_table())
        print(_FOOTNOTE)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "boards",
        help="list the shipped boards and hardware configs",
        description="List the shipped boards (vendor facts) and hardware configurations, or "
        "validate and describe one configuration with --hw.",
    )
    p.add_argument("--hw", metavar="NAME_OR_PATH", default=None,
                   help="validate and describe one hardware config (a shipped name such as "
                   "zcu102_edge_moe, or a .yaml path)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=_run)
