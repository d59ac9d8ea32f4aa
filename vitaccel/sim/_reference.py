"""The float64 reference execution of a graph: every node's exact float function."""

from __future__ import annotations

import numpy as np

from vitaccel.ir import INPUT, Graph
from vitaccel.sim._registry import REFERENCE

__all__ = ["run_reference"]


def run_reference(graph: Graph, images: np.ndarray, task: int = 0) -> dict[str, np.ndarray]:
    """Run the graph in float64 with the reference (unquantized) parameters.

    Parameters
    ----------
    graph : Graph
        The quantized graph; only its structure and ``Param.ref`` values are used.
    images : np.ndarray
        Pixels (B, C, H, W) in [0, 1), float.
    task : int
        Task index for MoE gates.

    Returns
    -------
    dict
        Every node's float output (B, *node.shape), by node name.
    """
    values: dict[str, np.ndarray] = {INPUT: np.asarray(images, dtype=np.float64)}
    for node in graph:
        values[node.name] = REFERENCE[node.op](node, [values[i] for i in node.inputs], task)
    del values[INPUT]
    return values
