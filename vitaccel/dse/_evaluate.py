"""Evaluating design points: graph building, cost estimate and accuracy, with caches.

This module runs inside the workers (local processes or Dask workers). Everything expensive
is cached per process:

* the float model, per (model, checkpoint, exit threshold);
* the quantized graph, per *graph key* (model, precision roles, softmax/GELU/LayerNorm
  variants, exit threshold) -- the attention order and P only set two attributes of the
  attention nodes, so a graph for another order/P is derived from the cached one instead of
  being re-quantized;
* the accuracy, per *numerics key* (graph key + attention order and P): tiling, clock,
  buffering, ports and board do not change a single bit, so points that differ only there
  share one simulation.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from vitaccel.dse._expr import Expr
from vitaccel.dse._knobs import (
    EXIT_KEY,
    apply_hw,
    apply_precision,
    hw_columns,
    hw_value,
    knob_kind,
)
from vitaccel.dse._metrics import accuracy_metrics, cost_metrics
from vitaccel.errors import UsageError
from vitaccel.hw import HwConfig

__all__ = ["SweepContext", "Task", "clear_caches", "evaluate_points", "point_report",
           "run_task"]

_GRAPH_CACHE_SIZE = 3
_models: dict[tuple, Any] = {}
_graphs: OrderedDict[str, Any] = OrderedDict()
_derived: OrderedDict[tuple, Any] = OrderedDict()
_accuracy: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
_data: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
# Dask workers may run tasks in threads of one process: the caches are shared, so building
# and simulating happen under this lock (which also stops two threads building one graph).
_lock = threading.RLock()


@dataclass(frozen=True)
class SweepContext:
    """What every point of a sweep shares (sent to the workers with each task).

    Attributes
    ----------
    model, checkpoint, precision, data : str
        As in :class:`vitaccel.dse.Space` (absolute paths).
    hw : HwConfig
        The base design.
    task : int
        MoE gate task of the simulation.
    accuracy_images : int
        Labelled images simulated per distinct quantized graph; 0 = cost only.
    constraints : tuple of Expr
        Evaluated on each row (column ``feasible``).
    axis_keys : tuple of str
        The space's axes: every row gets a value for each (the base design's where the point
        does not set it, e.g. the reference point).
    """

    model: str
    checkpoint: str | None
    hw: HwConfig
    precision: str
    data: str
    task: int
    accuracy_images: int
    constraints: tuple[Expr, ...] = ()
    axis_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Task:
    """A batch of points evaluated by one worker call.

    Attributes
    ----------
    context : SweepContext
    points : tuple of (int, dict, bool)
        ``(point id, {axis key: value}, is_reference)``.
    """

    context: SweepContext
    points: tuple[tuple[int, dict[str, Any], bool], ...]


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _precision_fingerprint(prec: Any) -> list:
    roles = sorted((r, str(f)) for r, f in prec.roles.items())
    layers = [(p, sorted((r, str(f)) for r, f in o.items())) for p, o in prec.layers.items()]
    return [roles, layers]


def _graph_key(ctx: SweepContext, prec: Any, cfg: HwConfig, threshold: Any) -> str:
    v = cfg.variants
    return _digest([ctx.model, ctx.checkpoint, _precision_fingerprint(prec), v.softmax, v.gelu,
                    v.layernorm, threshold])


def _numerics_key(graph_key: str, cfg: HwConfig) -> str:
    return _digest([graph_key, cfg.attention.order, cfg.attention.parallel_queries])


def _model(ctx: SweepContext, threshold: Any) -> Any:
    key = (ctx.model, ctx.checkpoint)
    if key not in _models:
        _models[key] = _load_model(ctx.model, ctx.checkpoint)
    model = _models[key]
    if threshold is None:
        return model
    variant = copy.copy(model)  # shares the parameters; only the config differs
    exits = dataclasses.replace(model.cfg.exits, threshold=float(threshold))
    variant.cfg = dataclasses.replace(model.cfg, exits=exits)
    return variant


def _load_model(name: str, checkpoint: str | None) -> Any:
    from vitaccel.models import build_model, get_config, load_checkpoint
    from vitaccel.models._train import DIGITS_VARIANTS, pretrained_digits

    cfg = get_config(name)
    if checkpoint:
        return load_checkpoint(checkpoint, cfg)
    variants = {preset: variant for variant, preset in DIGITS_VARIANTS.items()}
    if name in variants:
        return pretrained_digits(variants[name])
    import torch

    torch.manual_seed(0)
    return build_model(cfg).eval()


def _calibration(cfg: Any) -> np.ndarray:
    """Images that choose 'auto' integer bits (the same ones ``vitaccel estimate`` uses)."""
    if tuple(cfg.img_size) == (8, 8) and cfg.in_chans == 1:
        from vitaccel.data import load_digits_split

        return load_digits_split()[0][:256]
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(8, cfg.in_chans, *cfg.img_size)) / 256.0


def _with_attention(graph: Any, order: str, p: int) -> Any:
    """``graph`` with every attention node set to key order ``order`` and ``p`` query slots
    (exactly the two attributes the builder takes from ``Numerics``)."""
    nodes = []
    changed = False
    for node in graph.nodes:
        if node.op == "attention" and (node.attrs["order"], node.attrs["parallel_queries"]) \
                != (order, p):
            attrs = {**node.attrs, "order": order, "parallel_queries": p}
            node = dataclasses.replace(node, attrs=attrs)
            changed = True
        nodes.append(node)
    return graph.replace_nodes(tuple(nodes)) if changed else graph


def _graph(ctx: SweepContext, prec: Any, cfg: HwConfig, threshold: Any) -> Any:
    with _lock:
        return _graph_locked(ctx, prec, cfg, threshold)


def _graph_locked(ctx: SweepContext, prec: Any, cfg: HwConfig, threshold: Any) -> Any:
    from vitaccel.ir._build import Numerics, build_graph

    key = _graph_key(ctx, prec, cfg, threshold)
    graph = _graphs.get(key)
    if graph is None:
        model = _model(ctx, threshold)
        graph = build_graph(model, prec, numerics=Numerics.from_hw(cfg),
                            calibration=_calibration(model.cfg))
        _graphs[key] = graph
        while len(_graphs) > _GRAPH_CACHE_SIZE:
            evicted, _ = _graphs.popitem(last=False)
            for dkey in [d for d in _derived if d[0] == evicted]:
                del _derived[dkey]
    _graphs.move_to_end(key)
    # Derived graphs are kept too: the cost model caches its node summaries per graph object.
    dkey = (key, cfg.attention.order, cfg.attention.parallel_queries)
    derived = _derived.get(dkey)
    if derived is None:
        derived = _with_attention(graph, cfg.attention.order, cfg.attention.parallel_queries)
        _derived[dkey] = derived
        while len(_derived) > 16 * _GRAPH_CACHE_SIZE:
            _derived.popitem(last=False)
    _derived.move_to_end(dkey)
    return derived


def _images(ctx: SweepContext, model_cfg: Any) -> tuple[np.ndarray, np.ndarray]:
    key = (ctx.data, ctx.model, ctx.accuracy_images)
    if key not in _data:
        if ctx.data == "digits":
            if tuple(model_cfg.img_size) != (8, 8) or model_cfg.in_chans != 1:
                raise UsageError(
                    f"--accuracy: the digits images (1x8x8) do not fit model {model_cfg.name!r} "
                    f"({model_cfg.in_chans}x{model_cfg.img_size[0]}x{model_cfg.img_size[1]}); "
                    "set data: to a folder or .npz of labelled images in the space file")
            from vitaccel.data import load_digits_split

            _, _, x, y = load_digits_split()
        else:
            from vitaccel.data import load_images

            x, y = load_images(ctx.data, model_cfg)
            if y is None:
                raise UsageError(f"--accuracy: {ctx.data} has no labels")
        if len(x) < ctx.accuracy_images:
            raise UsageError(f"--accuracy {ctx.accuracy_images}: only {len(x)} labelled images "
                             f"in {ctx.data}")
        _data[key] = (x[: ctx.accuracy_images], y[: ctx.accuracy_images])
    return _data[key]


def _simulate(ctx: SweepContext, graph: Any, key: str) -> tuple[dict, dict, bool]:
    """Accuracy metrics and exit fractions of a numerics key; True when it was simulated."""
    with _lock:
        return _simulate_locked(ctx, graph, key)


def _simulate_locked(ctx: SweepContext, graph: Any, key: str) -> tuple[dict, dict, bool]:
    if key in _accuracy:
        metrics, fractions = _accuracy[key]
        return metrics, fractions, False
    from vitaccel.sim import compare, simulate

    x, y = _images(ctx, graph.model)
    result = simulate(graph, x, task=ctx.task, keep=True)
    report = compare(graph, x, y, task=ctx.task, result=result)
    fractions: dict[str, float] = {}
    if result.exit_index is not None:
        heads = {n.attrs["exit_index"]: n.name for n in graph.nodes if n.op == "exit_head"}
        counts = np.bincount(result.exit_index, minlength=len(heads) + 1) / len(x)
        fractions = {heads.get(j, graph.outputs[0]): float(c) for j, c in enumerate(counts)}
    _accuracy[key] = (accuracy_metrics(report, graph.outputs[0]), fractions)
    return _accuracy[key][0], fractions, True


def point_report(ctx: SweepContext, knobs: dict[str, Any]) -> tuple[dict[str, Any], Any,
                                                                    Any, bool]:
    """Evaluate one point: (row without ``point``/``reference``, graph, CostReport,
    whether a simulation ran)."""
    from vitaccel.cost import estimate

    cfg = apply_hw(ctx.hw, knobs)
    prec = apply_precision(ctx.precision, knobs)
    threshold = knobs.get(EXIT_KEY)
    gkey = _graph_key(ctx, prec, cfg, threshold)
    nkey = _numerics_key(gkey, cfg)
    graph = _graph(ctx, prec, cfg, threshold)
    row: dict[str, Any] = {"numerics": nkey, "precision": prec.name}
    row.update(hw_columns(cfg))
    row.update({k: _effective(k, cfg, prec, graph) for k in ctx.axis_keys if k not in knobs})
    row.update(knobs)
    fractions: dict[str, float] = {}
    ran = False
    if ctx.accuracy_images:
        acc, fractions, ran = _simulate(ctx, graph, nkey)
    report = estimate(graph, cfg, exit_fractions=fractions or None)
    row.update(cost_metrics(report))
    if ctx.accuracy_images:
        row.update(acc)
    row["feasible"] = all(c.evaluate(row) is True for c in ctx.constraints)
    return row, graph, report, ran


def _effective(key: str, cfg: HwConfig, prec: Any, graph: Any) -> Any:
    """The value knob ``key`` has in a design that does not set it."""
    kind = knob_kind(key)
    if kind == "hw":
        return hw_value(cfg, key)
    if kind == "exit":
        return float(graph.model.exits.threshold)
    if kind == "preset":
        return prec.name
    if kind == "format":
        return str(prec.roles[key[len("precision."):]])
    spec = prec.roles[key[len("precision."): -len(".width")]]
    return None if spec is None else int(spec.width)


def evaluate_points(task: Task) -> tuple[list[dict[str, Any]], int]:
    """Evaluate a task's points; returns the table rows and the simulations run."""
    rows = []
    simulations = 0
    for pid, knobs, is_reference in task.points:
        row, _, _, ran = point_report(task.context, knobs)
        rows.append({"point": pid, "reference": is_reference, **row})
        simulations += ran
    return rows, simulations


def clear_caches() -> None:
    """Forget this process' models, graphs, accuracies and images (benchmarks, tests)."""
    with _lock:
        for cache in (_models, _graphs, _derived, _accuracy, _data):
            cache.clear()


def run_task(task: Task) -> tuple[list[dict[str, Any]], int]:
    """Worker entry point (picklable top-level function) for :func:`evaluate_points`."""
    return evaluate_points(task)

