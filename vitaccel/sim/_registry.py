"""Which function simulates (bit-exact) and which computes the float reference of each op."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vitaccel.fixed import FixedType
from vitaccel.ir import Node
from vitaccel.units import attention, embed, exits, head, linear, moe, norm

__all__ = ["SimContext", "SIM", "REFERENCE", "register"]


@dataclass
class SimContext:
    """Per-run state shared by the units of one simulation.

    Attributes
    ----------
    task : int
        Task index (selects the MoE gates).
    overflow : dict
        ``{node name: {role: count}}`` of values that overflowed (saturated or wrapped).
    reports : dict
        Per-image reports units produce, ``{kind: {node name: array (rows, ...)}}`` with one
        row per image of the node's input batch (expert load, exit decisions, ...).
    stop : np.ndarray or None
        Set by an exit head: bool (rows,), the images whose exit rule fired; the simulator
        reads and clears it after the node (and, with early exit, stops computing them).
    """

    task: int = 0
    overflow: dict[str, dict[str, int]] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)
    stop: np.ndarray | None = None

    def counter(self, node: Node) -> dict[str, int]:
        return self.overflow.setdefault(node.name, {})


SimFn = Callable[[Node, list[np.ndarray], list[FixedType], SimContext], np.ndarray]
RefFn = Callable[[Node, list[np.ndarray], int], np.ndarray]

SIM: dict[str, SimFn] = {}
REFERENCE: dict[str, RefFn] = {}


def register(op: str, sim: SimFn, ref: RefFn) -> None:
    """Register the bit-exact and float functions of ``op`` (one entry per op kind)."""
    SIM[op] = sim
    REFERENCE[op] = ref


def _pure(sim: Callable, ref: Callable) -> tuple[SimFn, RefFn]:
    """Adapt a unit that needs only its overflow counter (no task, no reports)."""
    return (lambda node, xs, fmts, ctx: sim(node, xs, fmts, ctx.counter(node)),
            lambda node, xs, task: ref(node, xs))


register("patch_embed", *_pure(embed.patch_simulate, embed.patch_reference))
register("embed_tokens", *_pure(embed.tokens_simulate, embed.tokens_reference))
register("layernorm", *_pure(norm.simulate, norm.reference))
register("linear", *_pure(linear.simulate, linear.reference))
register("attention", *_pure(attention.simulate, attention.reference))
register("head", *_pure(head.simulate, head.reference))
register(
    "moe",
    lambda node, xs, fmts, ctx: moe.simulate(node, xs, fmts, ctx.task, ctx.counter(node),
                                             ctx.reports),
    moe.reference,
)
register("grid_conv", *_pure(exits.grid_simulate, exits.grid_reference))


def _exit_head(node: Node, xs: list[np.ndarray], fmts: list[FixedType],
               ctx: SimContext) -> np.ndarray:
    logits, ctx.stop = exits.simulate(node, xs, fmts, ctx.counter(node), ctx.reports)
    return logits


register("exit_head", _exit_head, lambda node, xs, task: exits.reference(node, xs))
