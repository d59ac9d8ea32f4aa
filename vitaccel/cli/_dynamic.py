"""``vitaccel demo`` step: the MoE and early-exit digits models, float vs bit-accurate."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

__all__ = ["demo_step", "digits_fidelity"]

SWEEP = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99)
"""max_prob thresholds the demo sweeps on the early-exit model."""


def digits_fidelity(variant: str, precision: str = "edge-moe", task: int = 0) -> dict[str, Any]:
    """Float and bit-accurate top-1 accuracy of a digits variant on the digits test split.

    Parameters
    ----------
    variant : str
        ``dense``, ``moe``, ``early-exit`` or ``shiftadd`` (trained once and cached).
    precision : str
        Precision preset or YAML path.
    task : int
        Task index (MoE gate).

    Returns
    -------
    dict
        ``graph``, ``result`` (exits disabled for early-exit models, so that every head's
        logits are available), ``float_acc``, ``sim_acc`` (early exit: with the configured
        threshold), ``labels``, ``images``, and for early-exit models ``float_index`` (the
        exit each image takes in float).
    """
    import torch

    from vitaccel.data import load_digits_split
    from vitaccel.ir._build import build_graph
    from vitaccel.models import pretrained_digits
    from vitaccel.sim import simulate
    from vitaccel.units.exits import apply_threshold

    model = pretrained_digits(variant)
    _, _, x, y = load_digits_split()
    graph = build_graph(model, precision)
    out: dict[str, Any] = {"graph": graph, "labels": y, "images": x}
    with torch.no_grad():
        xt = torch.from_numpy(x)
        if model.cfg.exits is not None:
            logits, index = model.forward_exits(xt, task)
            out["float_index"] = index.numpy()
        else:
            logits = model(xt, task)
    out["float_acc"] = float(np.mean(logits.argmax(dim=-1).numpy() == y))
    result = simulate(graph, x, task=task, early_exit=False)
    out["result"] = result
    if result.exit_index is not None:
        threshold = float(graph["exits.0"].params["threshold"].ref)
        _, chosen = apply_threshold(result, threshold)
        out["sim_acc"] = float(np.mean(np.argmax(chosen, axis=-1) == y))
    else:
        out["sim_acc"] = float(np.mean(result.predictions() == y))
    return out


def _moe(run: dict[str, Any]) -> None:
    load = run["result"].reports["expert_load"]
    for name, counts in load.items():
        mean = counts.mean(axis=0)
        active = (counts > 0).sum(axis=1).mean()
        print(f"  {name}: tokens per expert per image (mean) "
              + " ".join(f"{v:5.2f}" for v in mean) + f"; active experts {active:.2f}")


def _exits(run: dict[str, Any]) -> None:
    from vitaccel.units.exits import apply_threshold, exit_summary

    result, y = run["result"], run["labels"]
    graph = run["graph"]
    threshold = float(graph["exits.0"].params["threshold"].ref)
    index, logits = apply_threshold(result, threshold)
    decided = type(result)(graph, {**result.outputs, graph.outputs[0]: logits},
                           exit_index=index, task=result.task)
    summary = exit_summary(decided, y)
    print("  " + summary.table().replace("\n", "\n  "))
    fl = np.bincount(run["float_index"], minlength=len(summary.histogram))
    print(f"  float exit histogram: {fl.tolist()}  (simulated {list(summary.histogram)})")
    print("  threshold sweep (one simulation; bit-identical to a run per threshold):")
    print(f"  {'threshold':>9} {'accuracy':>9} {'saved':>7}  histogram")
    for t in SWEEP:
        i, lg = apply_threshold(result, t)
        s = exit_summary(type(result)(graph, {**result.outputs, graph.outputs[0]: lg},
                                      exit_index=i, task=result.task), y)
        print(f"  {t:>9g} {100 * s.accuracy:>8.2f}% {100 * s.blocks_saved:>6.1f}%  "
              f"{list(s.histogram)}")


def demo_step(args: argparse.Namespace) -> None:
    """Simulate the MoE and early-exit digits models bit-accurately on the test split."""
    for variant, detail in (("moe", _moe), ("early-exit", _exits)):
        run = digits_fidelity(variant)
        n = len(run["labels"])
        print(f"  digits-{variant} (edge-moe precision, {n} test images): float "
              f"{100 * run['float_acc']:.2f} %, simulated {100 * run['sim_acc']:.2f} %")
        detail(run)
