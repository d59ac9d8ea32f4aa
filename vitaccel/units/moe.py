"""Mixture-of-experts unit (Edge-MoE / M^3ViT): task gate, top-k routing, patch reordering.

Node ``blocks.{i}.mlp`` (op ``moe``): inputs ``(x, residual)``, both (T, D) per image; output
(T, D) in the node format. Attributes (all formats resolved from the precision roles):

``num_experts`` E, ``top_k`` k, ``acc_t`` (role ``accum``), ``product_t`` (role ``product``;
None = full-precision products), ``softmax`` (softmax variant), ``gelu`` (GELU variant),
``hidden_t`` (role ``moe.hidden``: the expert hidden buffer), ``scaled_t`` (role ``moe.scaled``),
``combine_t`` (role ``moe.accum``), ``select`` (``"score"`` or ``"prob"``).
Parameters: ``gate_weight`` (tasks, E, D), ``gate_bias`` (tasks, E) [zeros when the gate has
no bias], ``fc1_weight`` (E, H, D), ``fc1_bias`` (E, H), ``fc2_weight`` (E, D, H),
``fc2_bias`` (E, D).

Semantics per image, for the simulation's task ``t`` (token rows are independent)::

    g[p, e]   = acc_t(gate_bias[t, e] + sum_d product_t(x[p, d] * gate_weight[t, e, d]))
    max, recip = softmax.stats(g[p, :])          # single pass over experts 0..E-1
    sel[p]    = k experts by descending key, ties to the lower expert index, where the key
                is g[p, e] for select="score" (Edge-MoE compares the gate scores) or the
                probability softmax.probs(g[p, e]) for select="prob"
    s[p, j]   = softmax.probs(g[p, sel[p, j]])   # prob_t, NOT renormalised
    queue[e]  = tokens p with e in sel[p], in token order; active experts = non-empty queues
    for e in active experts, ascending:          # weights of e are loaded once
        for p in queue[e], in order:             # gather
            h   = hidden_t(gelu(acc_t(fc1_bias[e] + x[p] . fc1_weight[e])))
            y   = acc_t(fc2_bias[e] + h . fc2_weight[e])      # expert output incl. bias
            out[p] = combine_t(out[p] + scaled_t(s[p, e] * y))  # scatter; out starts at 0
    result = out_t(out_t(out) + residual)

Edge-MoE (``moe.cpp``, ``linear.cpp``): gate scores accumulate in ``fm_t``; the online softmax
keeps a running max/sum over all experts; top-k is an insertion sort on the gate *scores* with a
strict ``>`` (equal scores keep the earlier, lower index); only the k winners get
``exp(score - max) / sum``; ``block_out *= score; block_out += dst[p]`` casts the product to
``fm_t`` and then the sum to ``fm_t`` (``moe.scaled`` and ``moe.accum`` are both ``fm_t`` in
the edge-moe preset). Each (token, expert) pair is computed independently, so processing all
queued tokens of a batch together gives the same bits as the per-image queues.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vitaccel.fixed import FixedType, fixed_add, fixed_matmul, fixed_mul
from vitaccel.ir import Node
from vitaccel.units.linear import gelu_assigned, gelu_exact

__all__ = ["simulate", "reference", "gate_scores", "route", "expert_queues", "image_expert_load",
           "SELECT_RULES"]

SELECT_RULES = ("score", "prob")
"""Keys the top-k selection may compare: gate scores (Edge-MoE) or probabilities."""


def _count(overflow: dict[str, int], role: str, n: int) -> None:
    if n:
        overflow[role] = overflow.get(role, 0) + int(n)


def _cast(dst: FixedType, raw: np.ndarray, src: FixedType, overflow: dict[str, int],
          role: str) -> np.ndarray:
    out, n = dst.cast(raw, src, return_overflow=True)
    _count(overflow, role, n)
    return np.asarray(out, dtype=np.int64)


def gate_scores(x: np.ndarray, x_t: FixedType, node: Node, task: int,
                overflow: dict[str, int]) -> np.ndarray:
    """Gate accumulators of ``task``: x (N, D) codes -> (N, E) codes of ``acc_t``."""
    w, b = node.params["gate_weight"], node.params["gate_bias"]
    acc, n = fixed_matmul(x, x_t, w.raw[task].T, w.fmt, acc_t=node.attrs["acc_t"],
                          product_t=node.attrs["product_t"], bias_raw=b.raw[task],
                          bias_t=b.fmt, return_overflow=True)
    _count(overflow, "accum", n)
    return acc


def _top_k(keys: np.ndarray, k: int) -> np.ndarray:
    """Indices (N, k) of the k largest keys per row; equal keys: lower index first."""
    order = np.argsort(-keys, axis=-1, kind="stable")
    return order[:, :k]


def route(scores: np.ndarray, node: Node, overflow: dict[str, int]) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Top-k routing of gate scores (N, E) in ``acc_t``.

    Returns
    -------
    experts : np.ndarray, shape (N, k)
        Selected expert indices, by descending key (ties: lower index first).
    probs : np.ndarray, shape (N, k)
        Their probabilities (codes of ``softmax.out_t``), not renormalised.
    """
    softmax, score_t, k = node.attrs["softmax"], node.attrs["acc_t"], node.attrs["top_k"]
    m, r = softmax.stats(scores, score_t, overflow=overflow)
    if node.attrs["select"] == "score":
        experts = _top_k(scores, k)
        probs = softmax.probs(np.take_along_axis(scores, experts, axis=-1), score_t, m, r,
                              overflow)
        return experts, probs
    every = softmax.probs(scores, score_t, m, r, overflow)
    experts = _top_k(every, k)
    return experts, np.take_along_axis(every, experts, axis=-1)


def expert_queues(experts: np.ndarray, num_experts: int) -> list[np.ndarray]:
    """Per expert, the token rows routed to it in token order (Edge-MoE's expert queues).

    ``experts`` (N, k) from :func:`route`; returns E arrays of row indices into the N tokens.
    """
    return [np.nonzero((experts == e).any(axis=-1))[0] for e in range(num_experts)]


def _expert(x: np.ndarray, x_t: FixedType, node: Node, e: int,
            overflow: dict[str, int]) -> np.ndarray:
    """Expert ``e`` on gathered rows x (n, D): fc1 + GELU -> hidden -> fc2, codes of acc_t."""
    p = node.params
    acc_t, product_t = node.attrs["acc_t"], node.attrs["product_t"]
    gelu, hidden_t = node.attrs["gelu"], node.attrs["hidden_t"]
    a, n = fixed_matmul(x, x_t, p["fc1_weight"].raw[e].T, p["fc1_weight"].fmt, acc_t=acc_t,
                        product_t=product_t, bias_raw=p["fc1_bias"].raw[e],
                        bias_t=p["fc1_bias"].fmt, return_overflow=True)
    _count(overflow, "accum", n)
    h = gelu_assigned(gelu, a, acc_t, hidden_t, "hidden", overflow)
    y, n = fixed_matmul(h, hidden_t, p["fc2_weight"].raw[e].T, p["fc2_weight"].fmt,
                        acc_t=acc_t, product_t=product_t, bias_raw=p["fc2_bias"].raw[e],
                        bias_t=p["fc2_bias"].fmt, return_overflow=True)
    _count(overflow, "accum", n)
    return y


def simulate(node: Node, inputs: list[np.ndarray], fmts: list[FixedType], task: int,
             overflow: dict[str, int], reports: dict[str, Any]) -> np.ndarray:
    """Bit-exact MoE on a batch: inputs[0] x (B, T, D), inputs[1] residual (B, T, D).

    Adds ``reports["expert_load"][node.name]`` (B, E) int64 tokens per expert per image and
    ``reports["active_experts"][node.name]`` (B, E) bool.
    """
    x, x_t = inputs[0], fmts[0]
    b, t, d = x.shape
    num_experts = node.attrs["num_experts"]
    acc_t: FixedType = node.attrs["acc_t"]
    scaled_t: FixedType = node.attrs["scaled_t"]
    combine_t: FixedType = node.attrs["combine_t"]
    rows = x.reshape(b * t, d)
    experts, probs = route(gate_scores(rows, x_t, node, task, overflow), node, overflow)
    prob_t = node.attrs["softmax"].out_t
    queues = expert_queues(experts, num_experts)
    out = np.zeros((b * t, d), dtype=np.int64)
    for e, queue in enumerate(queues):
        if queue.size == 0:
            continue
        y = _expert(rows[queue], x_t, node, e, overflow)
        score = probs[queue, np.argmax(experts[queue] == e, axis=-1)]
        prod, prod_t = fixed_mul(y, acc_t, score[:, None], prob_t)
        scaled = _cast(scaled_t, prod, prod_t, overflow, "moe.scaled")
        total, total_t = fixed_add(out[queue], combine_t, scaled, scaled_t)
        out[queue] = _cast(combine_t, total, total_t, overflow, "moe.accum")
    y = _cast(node.fmt, out, combine_t, overflow, "out")
    s, s_t = fixed_add(y, node.fmt, inputs[1].reshape(b * t, d), fmts[1])
    y = _cast(node.fmt, s, s_t, overflow, "residual")
    load = np.stack([np.bincount(q // t, minlength=b) for q in queues], axis=-1)
    reports.setdefault("expert_load", {})[node.name] = load.astype(np.int64)
    reports.setdefault("active_experts", {})[node.name] = load > 0
    return y.reshape(b, t, d)


def image_expert_load(result: Any, image: int) -> dict[str, np.ndarray]:
    """Per-expert token counts of one simulated image, by MoE node (``vitaccel.estimate``'s
    ``expert_load`` argument).

    Parameters
    ----------
    result : vitaccel.sim.SimResult
        A simulation of a graph with MoE nodes.
    image : int
        Image index in the simulated batch.
    """
    loads = result.reports.get("expert_load", {})
    return {name: np.asarray(load[image]) for name, load in loads.items()}


def reference(node: Node, inputs: list[np.ndarray], task: int) -> np.ndarray:
    """Float64 MoE (reference weights, exact softmax and GELU, selection on probabilities)."""
    x = inputs[0]
    lead, d = x.shape[:-1], x.shape[-1]
    rows = x.reshape(-1, d)
    p = node.params
    logits = rows @ p["gate_weight"].ref[task].T + p["gate_bias"].ref[task]
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs = z / z.sum(axis=-1, keepdims=True)
    experts = _top_k(probs, node.attrs["top_k"])
    out = np.zeros_like(rows)
    for e in range(node.attrs["num_experts"]):
        hit = experts == e
        queue = np.nonzero(hit.any(axis=-1))[0]
        if queue.size == 0:
            continue
        h = gelu_exact(rows[queue] @ p["fc1_weight"].ref[e].T + p["fc1_bias"].ref[e])
        y = h @ p["fc2_weight"].ref[e].T + p["fc2_bias"].ref[e]
        out[queue] += probs[queue, e][:, None] * y
    return out.reshape(*lead, d) + inputs[1]
