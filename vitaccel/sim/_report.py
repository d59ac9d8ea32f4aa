"""Per-layer comparison of a bit-accurate simulation with the float reference."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vitaccel.ir import INPUT, Graph
from vitaccel.sim._reference import run_reference
from vitaccel.sim._simulate import SimResult, check_images, simulate

__all__ = ["LayerError", "Report", "compare", "error_metrics"]


@dataclass(frozen=True)
class LayerError:
    """Error of one node's simulated output against its float reference.

    Attributes
    ----------
    name, op, fmt : str
        Node name, op kind and output format.
    sqnr_db : float
        10 log10(sum ref^2 / sum (ref - sim)^2); inf when identical.
    max_abs_err : float
        Largest |ref - sim| (value units).
    cosine : float
        Cosine similarity of the flattened tensors.
    overflow : int
        Values that overflowed inside the node (all roles).
    elements : int
        Output elements compared.
    """

    name: str
    op: str
    fmt: str
    sqnr_db: float
    max_abs_err: float
    cosine: float
    overflow: int
    elements: int


def error_metrics(ref: np.ndarray, sim: np.ndarray) -> tuple[float, float, float]:
    """(SQNR in dB, max abs error, cosine similarity) of ``sim`` against ``ref``."""
    ref = np.asarray(ref, dtype=np.float64).ravel()
    sim = np.asarray(sim, dtype=np.float64).ravel()
    err = ref - sim
    noise = float(err @ err)
    signal = float(ref @ ref)
    if noise == 0.0:
        sqnr = float("inf")
    elif signal == 0.0:
        sqnr = float("-inf")
    else:
        sqnr = 10.0 * np.log10(signal / noise)
    denom = float(np.linalg.norm(ref) * np.linalg.norm(sim))
    cosine = float(ref @ sim / denom) if denom > 0 else float(np.array_equal(ref, sim))
    return sqnr, float(np.max(np.abs(err), initial=0.0)), cosine


@dataclass(frozen=True)
class Report:
    """Simulation-vs-float report of one model, precision and data set.

    Attributes
    ----------
    model, precision : str
        Names.
    images : int
        Images simulated.
    layers : tuple of LayerError
        Per node, in graph order.
    input_overflow : int
        Pixels outside the input format.
    top1_agreement : float or None
        Share of images whose simulated arg-max equals the float arg-max (classifiers).
    accuracy_sim, accuracy_float : float or None
        Top-1 accuracy against the labels, when labels were given.
    """

    model: str
    precision: str
    images: int
    layers: tuple[LayerError, ...]
    input_overflow: int
    top1_agreement: float | None
    accuracy_sim: float | None
    accuracy_float: float | None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = [asdict(layer) for layer in self.layers]
        return d

    def to_json(self) -> str:
        """JSON text (inf SQNR written as the string "inf")."""
        def fix(v: Any) -> Any:
            if isinstance(v, float) and not np.isfinite(v):
                return "inf" if v > 0 else "-inf"
            if isinstance(v, dict):
                return {k: fix(x) for k, x in v.items()}
            if isinstance(v, list):
                return [fix(x) for x in v]
            return v

        return json.dumps(fix(self.to_dict()), indent=2)

    def table(self) -> str:
        """A readable terminal table: one row per layer, then the totals."""
        head = f"{'layer':<24} {'op':<12} {'format':<28} {'SQNR dB':>8} {'max err':>10} " \
               f"{'cosine':>8} {'overflow':>9}"
        rows = [head, "-" * len(head)]
        for e in self.layers:
            rows.append(f"{e.name:<24} {e.op:<12} {e.fmt:<28} {e.sqnr_db:>8.1f} "
                        f"{e.max_abs_err:>10.3g} {e.cosine:>8.5f} {e.overflow:>9}")
        rows.append("-" * len(head))
        summary = [f"model {self.model}, precision {self.precision}, {self.images} images"]
        if self.input_overflow:
            summary.append(f"input pixels out of range: {self.input_overflow}")
        if self.top1_agreement is not None:
            summary.append(f"top-1 agreement with float: {100 * self.top1_agreement:.2f}%")
        if self.accuracy_sim is not None:
            summary.append(f"accuracy: simulated {100 * self.accuracy_sim:.2f}%, "
                           f"float {100 * self.accuracy_float:.2f}%")
        overflowing = [e for e in self.layers if e.overflow]
        total = sum(e.overflow for e in overflowing)
        line = f"overflow: {total} values in {len(overflowing)} layers"
        if overflowing:
            line += f" (worst: {max(overflowing, key=lambda e: e.overflow).name})"
        summary.append(line)
        return "\n".join(rows + summary)


def compare(graph: Graph, images: Any, labels: Any = None, *, task: int = 0,
            batch_size: int | None = None, result: SimResult | None = None) -> Report:
    """Simulate (or reuse ``result`` kept with ``keep=True, early_exit=False``) and compare
    every layer with the float run; accuracy is that of the final head.

    Parameters
    ----------
    graph : Graph
        Quantized model.
    images : array_like
        Pixels (B, C, H, W) in [0, 1).
    labels : array_like, optional
        Integer class labels (B,) for accuracy.
    """
    x = check_images(graph, images)
    if result is None:
        # every image through every node, so each layer compares like with like; the exit
        # decisions of early-exit graphs are analysed by vitaccel.units.exits.exit_summary
        result = simulate(graph, x, task=task, keep=True, batch_size=batch_size,
                          early_exit=False)
    ref = run_reference(graph, x, task=task)
    layers = []
    for node in graph:
        sim = node.fmt.to_float(result.tensors[node.name])
        sqnr, max_err, cos = error_metrics(ref[node.name], sim)
        ovf = sum(result.overflow.get(node.name, {}).values())
        layers.append(LayerError(node.name, node.op, str(node.fmt), sqnr, max_err, cos, ovf,
                                 int(sim.size)))
    out = graph.outputs[0]
    agreement = acc_sim = acc_float = None
    if graph[out].op == "head":
        p_sim = result.predictions()
        p_ref = np.argmax(ref[out], axis=-1)
        agreement = float(np.mean(p_sim == p_ref))
        if labels is not None:
            y = np.asarray(labels)
            acc_sim, acc_float = float(np.mean(p_sim == y)), float(np.mean(p_ref == y))
    return Report(graph.name, getattr(graph.precision, "name", "?"), int(x.shape[0]),
                  tuple(layers), sum(result.overflow.get(INPUT, {}).values()), agreement,
                  acc_sim, acc_float)
