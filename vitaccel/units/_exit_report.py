"""Early-exit statistics: histogram, accuracy per exit, saved block computations, sweeps."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.ir import Graph, Param

__all__ = ["ExitSummary", "exit_summary", "exit_sweep", "apply_threshold", "with_threshold",
           "fires"]


def fires(score: np.ndarray, rule: str, threshold_raw: int) -> np.ndarray:
    """The exit rule on score codes: ``>=`` threshold (max_prob) or ``<=`` (entropy)."""
    if rule == "max_prob":
        return score >= threshold_raw
    return score <= threshold_raw


@dataclass(frozen=True)
class ExitSummary:
    """Where images left the network and what it cost, for one threshold.

    Attributes
    ----------
    rule : str
        ``max_prob`` or ``entropy``.
    threshold : float
        The threshold as configured (the decision compares its code in the score format).
    exits : tuple of str
        Output node per exit index: the exit heads in order, then the final output.
    after_block : tuple of int
        Block index after which each exit sits (the last block for the final output).
    histogram : tuple of int
        Images leaving at each exit.
    accuracy_per_exit : tuple of float
        Top-1 accuracy of the images leaving at each exit (NaN where none left).
    accuracy : float
        Top-1 accuracy of the logits of the exit each image took.
    blocks_computed, blocks_total : int
        Transformer-block computations performed, and images x depth.
    """

    rule: str
    threshold: float
    exits: tuple[str, ...]
    after_block: tuple[int, ...]
    histogram: tuple[int, ...]
    accuracy_per_exit: tuple[float, ...]
    accuracy: float
    blocks_computed: int
    blocks_total: int

    @property
    def blocks_saved(self) -> float:
        """Fraction of block computations not performed."""
        return 1.0 - self.blocks_computed / self.blocks_total if self.blocks_total else 0.0

    def table(self) -> str:
        """A readable table: one row per exit."""
        lines = [f"rule {self.rule}, threshold {self.threshold:g}: accuracy "
                 f"{100 * self.accuracy:.2f} %, block computations saved "
                 f"{100 * self.blocks_saved:.1f} %",
                 f"  {'exit':<10} {'after block':>11} {'images':>7} {'accuracy':>9}"]
        for name, blk, n, acc in zip(self.exits, self.after_block, self.histogram,
                                     self.accuracy_per_exit, strict=True):
            shown = "-" if math.isnan(acc) else f"{100 * acc:.2f} %"
            lines.append(f"  {name:<10} {blk:>11} {n:>7} {shown:>9}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN accuracies as None)."""
        d = dataclasses.asdict(self)
        d["accuracy_per_exit"] = [None if math.isnan(a) else a for a in self.accuracy_per_exit]
        d["blocks_saved"] = self.blocks_saved
        return d


def _exit_nodes(graph: Graph) -> list[Any]:
    nodes = [n for n in graph if n.op == "exit_head"]
    if not nodes:
        raise UsageError(f"graph {graph.name!r} has no exit heads (model config has no exits)")
    return sorted(nodes, key=lambda n: n.attrs["exit_index"])


def _check_threshold(rule: str, threshold: float) -> float:
    t = float(threshold)
    if rule == "max_prob" and not 0.0 < t <= 1.0:
        raise UsageError(f"threshold: max_prob thresholds must lie in (0, 1], got {threshold!r}")
    if rule == "entropy" and not t >= 0.0:
        raise UsageError(f"threshold: entropy thresholds must be >= 0 nats, got {threshold!r}")
    return t


def with_threshold(graph: Graph, threshold: float) -> Graph:
    """A copy of ``graph`` whose exit heads use ``threshold`` (assigned to each head's
    decision format, exactly as the graph builder does)."""
    nodes = []
    for node in graph:
        if node.op == "exit_head":
            t = _check_threshold(node.attrs["rule"], threshold)
            fmt = node.params["threshold"].fmt
            params = {**node.params, "threshold": Param.quantize(np.array(t), fmt)}
            node = dataclasses.replace(node, params=params)
        nodes.append(node)
    return graph.replace_nodes(tuple(nodes))


def apply_threshold(result: Any, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The early-exit outcome of ``threshold`` from a run with exits disabled.

    Parameters
    ----------
    result : vitaccel.sim.SimResult
        ``simulate(graph, images, early_exit=False)`` of a graph with exit heads.
    threshold : float
        Exit threshold of the graph's rule.

    Returns
    -------
    exit_index : np.ndarray (B,)
        As ``SimResult.exit_index`` of ``simulate(with_threshold(graph, threshold), images)``.
    logits : np.ndarray (B, classes)
        Raw codes of the main output of that run (bit-identical: an exit head's logits and
        score of an image do not depend on the other images or on the threshold).
    """
    graph = result.graph
    nodes = _exit_nodes(graph)
    main = graph.outputs[0]
    main_t = graph.spec(main)[1]
    index = np.full(len(result.exit_index), len(nodes), dtype=np.int64)
    logits = np.array(result.outputs[main], copy=True)
    undecided = np.ones(len(index), dtype=bool)
    for j, node in enumerate(nodes):
        t = _check_threshold(node.attrs["rule"], threshold)
        code = int(node.params["threshold"].fmt.quantize(np.array(t)))
        take = undecided & fires(result.reports["exit_score"][node.name], node.attrs["rule"],
                                 code)
        index[take] = j
        logits[take] = main_t.cast(result.outputs[node.name][take], node.fmt)
        undecided &= ~take
    return index, logits


def _labels(labels: Any, n: int, classes: int) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,) or y.dtype.kind not in "iu" or (n and (y.min() < 0 or
                                                              y.max() >= classes)):
        raise UsageError(f"labels: expected {n} integer class indices in [0, {classes - 1}], "
                         f"got shape {y.shape} dtype {y.dtype}")
    return y


def _summary(graph: Graph, index: np.ndarray, logits: np.ndarray, labels: Any,
             threshold: float) -> ExitSummary:
    nodes = _exit_nodes(graph)
    depth = graph.model.depth
    y = _labels(labels, len(index), logits.shape[-1])
    correct = np.argmax(logits, axis=-1) == y
    after = tuple(n.attrs["after_block"] for n in nodes) + (depth - 1,)
    hist, acc = [], []
    for j in range(len(after)):
        taken = index == j
        hist.append(int(taken.sum()))
        acc.append(float(correct[taken].mean()) if taken.any() else math.nan)
    computed = int(sum(h * (a + 1) for h, a in zip(hist, after, strict=True)))
    return ExitSummary(
        rule=nodes[0].attrs["rule"], threshold=float(threshold),
        exits=tuple(n.name for n in nodes) + (graph.outputs[0],), after_block=after,
        histogram=tuple(hist), accuracy_per_exit=tuple(acc),
        accuracy=float(correct.mean()) if len(y) else math.nan,
        blocks_computed=computed, blocks_total=len(index) * depth,
    )


def exit_summary(result: Any, labels: Any) -> ExitSummary:
    """Histogram, accuracies and saved block computations of one early-exit simulation."""
    graph = result.graph
    if result.exit_index is None:
        raise UsageError(f"graph {graph.name!r} has no exit heads (model config has no exits)")
    threshold = float(_exit_nodes(graph)[0].params["threshold"].ref)
    return _summary(graph, result.exit_index, result.outputs[graph.outputs[0]], labels,
                    threshold)


def exit_sweep(graph: Graph, images: Any, labels: Any, thresholds: Sequence[float], *,
               task: int = 0, batch_size: int | None = None) -> list[ExitSummary]:
    """Accuracy and saved work for each threshold, from ONE simulation of every exit head.

    Bit-identical to simulating ``with_threshold(graph, t)`` for each ``t`` (see
    :func:`apply_threshold`). ``images`` are float pixels (B, C, H, W), ``labels`` (B,).
    """
    from vitaccel.sim import simulate

    ts = list(thresholds)
    if not ts:
        raise UsageError("thresholds: expected at least one threshold")
    rule = _exit_nodes(graph)[0].attrs["rule"]
    ts = [_check_threshold(rule, t) for t in ts]
    result = simulate(graph, images, task=task, batch_size=batch_size, early_exit=False)
    _labels(labels, len(result.exit_index), graph.spec(graph.outputs[0])[0][-1])
    out = []
    for t in ts:
        index, logits = apply_threshold(result, t)
        out.append(_summary(graph, index, logits, labels, t))
    return out
