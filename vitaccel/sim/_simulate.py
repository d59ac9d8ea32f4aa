"""The bit-accurate simulator: run every node's exact integer function on a batch of images."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.ir import INPUT, Graph
from vitaccel.sim._registry import SIM, SimContext

__all__ = ["SimResult", "simulate", "check_images"]


@dataclass
class SimResult:
    """What one simulation produced.

    Attributes
    ----------
    graph : Graph
        The simulated graph.
    outputs : dict
        Raw codes of each output node (B, *shape), in the node's format.
    tensors : dict
        Raw codes of every node (only when ``keep=True``), by node name.
    overflow : dict
        ``{node: {role: count}}``: values that overflowed (saturated or wrapped) per internal
        role; ``input`` counts pixels outside the input format.
    reports : dict
        Per-image reports by kind and node: ``{kind: {node: array (B, ...)}}``, e.g.
        ``expert_load`` (B, E) tokens per expert, ``active_experts`` (B, E),
        ``exit_score`` (B,) raw decision scores and ``exit_fire`` (B,) of exit heads. Rows of
        images that exited before the node ran are zero.
    task : int
        Task index used.
    exit_index : np.ndarray or None
        Graphs with exit heads: per image, the exit taken (``j`` for exit head ``j``, the
        number of exit heads for the final head); None otherwise.
    skipped : dict
        ``{node: images not computed}`` (images that had exited before the node).
    """

    graph: Graph
    outputs: dict[str, np.ndarray]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    overflow: dict[str, dict[str, int]] = field(default_factory=dict)
    reports: dict[str, Any] = field(default_factory=dict)
    task: int = 0
    exit_index: np.ndarray | None = None
    skipped: dict[str, int] = field(default_factory=dict)

    def value(self, name: str) -> np.ndarray:
        """Float64 values of an output (or kept) tensor."""
        raw = self.outputs.get(name, self.tensors.get(name))
        if raw is None:
            raise KeyError(f"tensor {name!r} was not kept (simulate(..., keep=True))")
        _, fmt = self.graph.spec(name)
        return fmt.to_float(raw)

    @property
    def output(self) -> np.ndarray:
        """Float values of the main output (logits or features)."""
        return self.value(self.graph.outputs[0])

    def predictions(self) -> np.ndarray:
        """Arg-max class per image (ties to the lower index, as in hardware comparators)."""
        return np.argmax(self.outputs[self.graph.outputs[0]], axis=-1)

    def total_overflow(self) -> int:
        return sum(sum(v.values()) for v in self.overflow.values())


def check_images(graph: Graph, images: Any, where: str = "images") -> np.ndarray:
    """Validate a batch of float pixels against the graph input; return float64 (B, C, H, W)."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == len(graph.input_shape):
        x = x[None]
    if x.shape[1:] != tuple(graph.input_shape):
        raise UsageError(
            f"{where}: expected shape (B, {', '.join(map(str, graph.input_shape))}), "
            f"got {tuple(np.shape(images))}"
        )
    if not np.isfinite(x).all():
        raise UsageError(f"{where}: contains NaN or Inf pixels")
    return x


def _merge(total: dict[str, dict[str, int]], part: Mapping[str, Mapping[str, int]]) -> None:
    for node, roles in part.items():
        acc = total.setdefault(node, {})
        for role, n in roles.items():
            acc[role] = acc.get(role, 0) + n


def _exit_nodes(graph: Graph) -> list[str]:
    return [n.name for n in graph if n.op == "exit_head"]


CHUNK_BYTES = 16 << 20
"""Default chunk size of :func:`simulate`: as many images as keep the largest int64 tensor of
a chunk within this many bytes (1 to 64 images). Measured on deit-tiny w8a8 (64 images; the
fc1 output is 1.2 MB per image): 17.1 ms per image in chunks of 8, 16.4 in 16, 20.7 in 32
and 27.9 in 64, where every large tensor is a fresh mapping of pages to fault in."""


def images_per_chunk(graph: Graph) -> int:
    """Images per chunk such that the largest int64 tensor of a chunk (a node output, or an
    attention unit's heads x T x T scores) stays within :data:`CHUNK_BYTES` (1 to 64)."""
    per_image = max([int(np.prod(node.shape)) for node in graph]
                    + [node.attrs["num_heads"] * node.shape[0] ** 2
                       for node in graph if node.op == "attention"] + [1])
    return max(1, min(64, CHUNK_BYTES // (8 * per_image)))


def _last_uses(graph: Graph) -> dict[str, list[str]]:
    """Per node, the tensors it is the last node to read (besides the graph's outputs): the
    simulator drops them once it has run, so a chunk holds only the live tensors."""
    last: dict[str, str] = {}
    for node in graph:
        for name in node.inputs:
            last[name] = node.name
    dead: dict[str, list[str]] = {}
    for name, reader in last.items():
        if name not in graph.outputs:
            dead.setdefault(reader, []).append(name)
    return dead


def _expand(a: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Rows ``a`` of the images ``rows`` of a chunk of ``n`` images; other rows zero."""
    if len(rows) == n:
        return a
    full = np.zeros((n, *a.shape[1:]), dtype=a.dtype)
    full[rows] = a
    return full


def simulate(graph: Graph, images: Any, *, task: int = 0, keep: bool = False,
             batch_size: int | None = None, early_exit: bool = True) -> SimResult:
    """Simulate the quantized graph bit-accurately on float pixel images.

    Parameters
    ----------
    graph : Graph
        Quantized model.
    images : array_like
        Pixels (B, C, H, W) (or one image (C, H, W)) in [0, 1); quantized into
        ``graph.input_fmt`` with ap_fixed assignment semantics.
    task : int
        Task index (MoE gate selection).
    keep : bool
        Keep every intermediate tensor in ``SimResult.tensors``.
    batch_size : int, optional
        Images per chunk (memory bound; results do not depend on it); default
        :func:`images_per_chunk`.
    early_exit : bool
        Graphs with ``exit_head`` nodes: an image whose exit rule fires is not computed by
        any later node, and its main output is that exit's logits. False computes every image
        through every node (exit heads still run and report their decisions).

    Returns
    -------
    SimResult
        ``outputs[graph.outputs[0]]`` holds, per image, the logits of the exit it took
        (assigned into the main output's format); other outputs, kept tensors and reports have
        zero rows for images that exited before their node ran.
    """
    x = check_images(graph, images)
    if batch_size is None:
        batch_size = images_per_chunk(graph)
    elif (isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer)
          or batch_size < 1):
        raise UsageError(f"batch_size: expected a positive number of images, got {batch_size!r}")
    num_tasks = getattr(graph.model, "num_tasks", 1)
    if not 0 <= task < num_tasks:
        raise UsageError(f"task: expected 0..{num_tasks - 1} for model {graph.name!r}, got {task}")
    result = SimResult(graph, {}, overflow={}, task=task)
    exits = _exit_nodes(graph)
    main = graph.outputs[0]
    main_t = graph.spec(main)[1]
    chunks: dict[str, list[np.ndarray]] = {}
    reports: dict[str, dict[str, list[np.ndarray]]] = {}
    taken: list[np.ndarray] = []
    wanted = [n.name for n in graph] if keep else list(graph.outputs)
    last_use = _last_uses(graph)
    for start in range(0, x.shape[0], batch_size):
        ctx = SimContext(task=task)
        raw, n = graph.input_fmt.quantize(x[start:start + batch_size], return_overflow=True)
        if n:
            ctx.overflow[INPUT] = {"input": int(n)}
        size = raw.shape[0]
        alive = np.arange(size)
        values = {INPUT: raw}
        fmts = {INPUT: graph.input_fmt}
        full: dict[str, np.ndarray] = {}
        chosen = np.zeros((size, *graph.spec(main)[0]), dtype=np.int64)
        index = np.full(size, len(exits), dtype=np.int64)
        for node in graph:
            fmts[node.name] = node.fmt
            result.skipped[node.name] = result.skipped.get(node.name, 0) + size - len(alive)
            if len(alive) == 0:
                continue
            values[node.name] = SIM[node.op](
                node, [values[i] for i in node.inputs], [fmts[i] for i in node.inputs], ctx
            )
            for name in last_use.get(node.name, ()):
                del values[name]
            for per_node in ctx.reports.values():
                if node.name in per_node:
                    per_node[node.name] = _expand(per_node[node.name], alive, size)
            if node.name in wanted:
                full[node.name] = _expand(values[node.name], alive, size)
            stop, ctx.stop = ctx.stop, None
            if early_exit and stop is not None and stop.any():
                chosen[alive[stop]] = main_t.cast(values[node.name][stop], node.fmt)
                index[alive[stop]] = node.attrs["exit_index"]
                alive = alive[~stop]
                values = {k: v[~stop] for k, v in values.items()}
        if len(alive):
            chosen[alive] = values[main]
        full[main] = chosen
        for name in wanted:
            chunks.setdefault(name, []).append(full.get(name, np.zeros(
                (size, *graph.spec(name)[0]), dtype=np.int64)))
        taken.append(index)
        _merge(result.overflow, ctx.overflow)
        for key, per_node in ctx.reports.items():
            for name, rep in per_node.items():
                reports.setdefault(key, {}).setdefault(name, []).append(rep)
    stacked = {k: np.concatenate(v) for k, v in chunks.items()}
    result.outputs = {k: stacked[k] for k in graph.outputs}
    result.reports = {k: {name: np.concatenate(v) for name, v in per_node.items()}
                      for k, per_node in reports.items()}
    if exits:
        result.exit_index = np.concatenate(taken)
    if keep:
        result.tensors = stacked
    return result
