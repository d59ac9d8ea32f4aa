"""Which function estimates each op kind: ``COST[op](node, graph, hw, ctx) -> UnitCost``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vitaccel.cost._attention import attention_cost
from vitaccel.cost._context import CostContext
from vitaccel.cost._elementwise import embed_tokens_cost, layernorm_cost_fn
from vitaccel.cost._exits import exit_head_cost, grid_conv_cost
from vitaccel.cost._linear import head_cost, linear_cost, patch_embed_cost
from vitaccel.cost._moe import moe_cost
from vitaccel.cost._types import UnitCost

__all__ = ["COST", "CostFn", "register"]

CostFn = Callable[[Any, Any, Any, CostContext], UnitCost]

COST: dict[str, CostFn] = {}


def register(op: str, fn: CostFn) -> None:
    """Register the cost function of op kind ``op`` (one per op, like ``vitaccel.sim.SIM``)."""
    COST[op] = fn


register("patch_embed", patch_embed_cost)
register("embed_tokens", embed_tokens_cost)
register("layernorm", layernorm_cost_fn)
register("linear", linear_cost)
register("attention", attention_cost)
register("head", head_cost)
register("moe", moe_cost)
register("grid_conv", grid_conv_cost)
register("exit_head", exit_head_cost)
