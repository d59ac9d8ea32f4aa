"""Float accuracy and early-exit statistics of a reference model on a labelled set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vitaccel.models._stats import exit_macs
from vitaccel.models._vit import VisionTransformer

__all__ = ["accuracy", "ExitReport", "exit_report"]


@torch.no_grad()
def accuracy(model: VisionTransformer, x: np.ndarray, y: np.ndarray, task: int = 0) -> float:
    """Top-1 accuracy (fraction) of the final head on images ``x`` and labels ``y``."""
    model.eval()
    pred = model(torch.from_numpy(np.asarray(x, dtype=np.float32)), task).argmax(dim=-1)
    return float(np.mean(pred.numpy() == np.asarray(y)))


@dataclass(frozen=True)
class ExitReport:
    """Where the samples of a set left an early-exit model.

    Attributes
    ----------
    exit_blocks : tuple of int
        Block index after which each exit sits; the last entry (``depth - 1``) is the final
        head.
    counts : tuple of int
        Samples that left at each exit (same order).
    accuracy : float
        Top-1 accuracy of the dynamic (early-exit) prediction.
    final_accuracy : float
        Top-1 accuracy of the final head alone.
    macs_per_exit : tuple of int
        MACs per image of leaving at each exit.
    """

    exit_blocks: tuple[int, ...]
    counts: tuple[int, ...]
    accuracy: float
    final_accuracy: float
    macs_per_exit: tuple[int, ...]

    @property
    def mean_macs(self) -> float:
        """Average MACs per image under the exit rule."""
        return float(np.dot(self.counts, self.macs_per_exit) / max(1, sum(self.counts)))

    @property
    def early_share(self) -> float:
        """Fraction of samples that left before the final head."""
        return 1.0 - self.counts[-1] / max(1, sum(self.counts))


@torch.no_grad()
def exit_report(
    model: VisionTransformer, x: np.ndarray, y: np.ndarray, task: int = 0
) -> ExitReport:
    """Run :meth:`VisionTransformer.forward_exits` on ``x`` and count where samples left."""
    model.eval()
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
    logits, index = model.forward_exits(xt, task)
    final = model(xt, task)
    cfg = model.cfg
    y = np.asarray(y)
    n_heads = len(cfg.exits.blocks) + 1
    return ExitReport(
        exit_blocks=(*cfg.exits.blocks, cfg.depth - 1),
        counts=tuple(int(c) for c in torch.bincount(index, minlength=n_heads)),
        accuracy=float(np.mean(logits.argmax(-1).numpy() == y)),
        final_accuracy=float(np.mean(final.argmax(-1).numpy() == y)),
        macs_per_exit=exit_macs(cfg),
    )
