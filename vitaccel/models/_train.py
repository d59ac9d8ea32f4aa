"""Deterministic CPU training of the digits reference models, with a checkpoint cache."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vitaccel.errors import UsageError
from vitaccel.models._checkpoint import load_checkpoint
from vitaccel.models._config import ViTConfig
from vitaccel.models._shiftadd import project_shift_weights
from vitaccel.models._vit import VisionTransformer, build_model
from vitaccel.models._zoo import PRESETS

__all__ = [
    "TrainRecipe", "DIGITS_VARIANTS", "RECIPES", "cache_dir", "pretrained_digits", "train_model",
    "digits_checkpoint_path",
]

DIGITS_VARIANTS = {
    "dense": "digits-dense",
    "moe": "digits-moe",
    "early-exit": "digits-early-exit",
    "shiftadd": "digits-shiftadd",
}
_CACHE_FORMAT = 2

ProgressFn = Callable[[int, int, float], None]


@dataclass(frozen=True)
class TrainRecipe:
    """Training hyper-parameters (AdamW, linear warm-up then cosine decay, cross-entropy).

    Attributes
    ----------
    epochs : int
        Passes over the training set.
    batch_size : int
        Images per step.
    lr : float
        Peak learning rate.
    weight_decay : float
        AdamW decoupled weight decay.
    warmup_epochs : int
        Epochs of linear learning-rate warm-up.
    label_smoothing : float
        Cross-entropy label smoothing.
    max_shift_px : int
        Random translation of each training image by up to this many pixels (zero fill).
    seed : int
        Seed of initialisation, shuffling and augmentation.
    threads : int
        CPU threads (fixed so that results do not depend on the machine's core count).
    """

    epochs: int = 45
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 3
    label_smoothing: float = 0.1
    max_shift_px: int = 0
    seed: int = 0
    threads: int = 1


RECIPES: dict[str, TrainRecipe] = {
    "dense": TrainRecipe(),
    "moe": TrainRecipe(),
    "early-exit": TrainRecipe(),
    # fine-tuning of the converted dense model with the straight-through estimator
    "shiftadd": TrainRecipe(epochs=15, lr=5e-4, warmup_epochs=1),
}


def cache_dir() -> Path:
    """The checkpoint cache: ``$VITACCEL_CACHE_DIR``, else ``$XDG_CACHE_HOME/vitaccel``, else
    ``~/.cache/vitaccel``."""
    if os.environ.get("VITACCEL_CACHE_DIR"):
        return Path(os.environ["VITACCEL_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "vitaccel"
    return Path.home() / ".cache" / "vitaccel"


@contextlib.contextmanager
def _deterministic(threads: int) -> Iterator[None]:
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def _shift(x: torch.Tensor, max_px: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by a random offset in ``[-max_px, max_px]^2`` (zero fill)."""
    if max_px == 0:
        return x
    b, _, h, w = x.shape
    pad = F.pad(x, (max_px, max_px, max_px, max_px))
    oy = torch.randint(0, 2 * max_px + 1, (b,), generator=gen)
    ox = torch.randint(0, 2 * max_px + 1, (b,), generator=gen)
    rows = (oy[:, None] + torch.arange(h))[:, :, None]
    cols = (ox[:, None] + torch.arange(w))[:, None, :]
    batch = torch.arange(b)[:, None, None]
    return pad.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def sincos_pos_embed(grid: tuple[int, int], dim: int, num_prefix: int) -> torch.Tensor:
    """2-D sine-cosine position embedding ``(1, num_prefix + gh*gw, dim)`` (prefix rows zero).

    Half of the channels encode the row, half the column; each half is ``sin`` and ``cos`` of
    the position times frequencies ``10000**(-i / (dim/4))``. Used to initialise the learned
    ``pos_embed`` so that small models see where each patch lies from the first step.
    """
    gh, gw = grid
    quarter = dim // 4
    freq = 10000.0 ** (-torch.arange(quarter, dtype=torch.float64) / max(1, quarter))
    rows, cols = torch.meshgrid(
        torch.arange(gh, dtype=torch.float64), torch.arange(gw, dtype=torch.float64),
        indexing="ij",
    )
    parts = []
    for pos in (rows.reshape(-1), cols.reshape(-1)):
        ang = pos[:, None] * freq[None, :]
        parts += [torch.sin(ang), torch.cos(ang)]
    emb = torch.cat(parts, dim=1)
    emb = F.pad(emb, (0, dim - emb.shape[1]))
    emb = torch.cat([torch.zeros(num_prefix, dim, dtype=torch.float64), emb])
    return emb.unsqueeze(0).float()


def _fresh_model(arch: ViTConfig, seed: int) -> VisionTransformer:
    torch.manual_seed(seed)
    model = build_model(arch)
    with torch.no_grad():
        model.pos_embed.copy_(
            sincos_pos_embed(arch.grid_size, arch.embed_dim, arch.num_prefix_tokens)
        )
    return model


def _loss(model: VisionTransformer, x: torch.Tensor, y: torch.Tensor, task: int,
          smoothing: float) -> torch.Tensor:
    if model.exits is not None:
        outs = model.forward_all_exits(x, task)
        return sum(F.cross_entropy(o, y, label_smoothing=smoothing) for o in outs) / len(outs)
    return F.cross_entropy(model(x, task), y, label_smoothing=smoothing)


def train_model(
    model: VisionTransformer, x: np.ndarray, y: np.ndarray, recipe: TrainRecipe,
    progress: ProgressFn | None = None,
) -> VisionTransformer:
    """Train ``model`` in place on images ``x`` ``(N, C, H, W)`` and labels ``y`` ``(N,)``.

    Early-exit models minimise the mean cross-entropy of all heads; MoE models cycle the task
    index per step (all tasks learn the same labels with their own gates); shift/add layers
    learn through the straight-through estimator and are projected to powers of two at the
    end. ``progress(epoch, epochs, mean_loss)`` is called after every epoch.
    """
    with _deterministic(recipe.threads):
        gen = torch.Generator().manual_seed(recipe.seed)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        steps_per_epoch = math.ceil(len(xt) / recipe.batch_size)
        total = recipe.epochs * steps_per_epoch
        warm = recipe.warmup_epochs * steps_per_epoch
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr,
                                weight_decay=recipe.weight_decay)

        def schedule(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        model.train()
        step = 0
        for epoch in range(recipe.epochs):
            order = torch.randperm(len(xt), generator=gen)
            losses = []
            for start in range(0, len(xt), recipe.batch_size):
                idx = order[start:start + recipe.batch_size]
                xb = _shift(xt[idx], recipe.max_shift_px, gen)
                loss = _loss(model, xb, yt[idx], step % model.cfg.num_tasks,
                             recipe.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                losses.append(loss.item())
                step += 1
            if progress is not None:
                progress(epoch + 1, recipe.epochs, float(np.mean(losses)))
        project_shift_weights(model)
        return model.eval()


def _recipe_key(variant: str) -> str:
    parts = [f"format={_CACHE_FORMAT}", repr(PRESETS[DIGITS_VARIANTS[variant]]),
             repr(RECIPES[variant])]
    if variant == "shiftadd":
        parts.append(_recipe_key("dense"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def digits_checkpoint_path(variant: str, cache: str | Path | None = None) -> Path:
    """Where :func:`pretrained_digits` caches ``variant`` (keyed by config and recipe hash)."""
    _check_variant(variant)
    root = Path(cache) if cache is not None else cache_dir()
    return root / f"digits-{variant}-{_recipe_key(variant)}.pt"


def _check_variant(variant: str) -> None:
    if variant not in DIGITS_VARIANTS:
        raise UsageError(
            f"variant: expected one of {', '.join(DIGITS_VARIANTS)}, got {variant!r}"
        )


def pretrained_digits(
    variant: str = "dense", *, cache_dir: str | Path | None = None, retrain: bool = False,
    progress: ProgressFn | None = None,
) -> VisionTransformer:
    """The digits reference model ``variant``, trained once on CPU and cached.

    Parameters
    ----------
    variant : str
        ``dense``, ``moe``, ``early-exit`` or ``shiftadd`` (the dense model converted to
        powers of two and fine-tuned).
    cache_dir : path, optional
        Cache folder (default: :func:`vitaccel.models.cache_dir`). The file name carries a hash
        of the model config and training recipe, so a changed recipe trains afresh.
    retrain : bool
        Train even if a cached checkpoint exists (and overwrite it).
    progress : callable, optional
        ``progress(epoch, epochs, mean_loss)`` after every training epoch.

    Returns
    -------
    VisionTransformer
        In eval mode; ``model.train_seconds`` and ``model.train_cpu_seconds`` hold the wall and
        process CPU time of its training, as recorded in the cache (for ``shiftadd`` they include
        training the dense model when that was not cached yet).
    """
    from vitaccel.data import load_digits_split

    path = digits_checkpoint_path(variant, cache_dir)
    arch = PRESETS[DIGITS_VARIANTS[variant]]
    path.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(path.with_suffix(".lock")):  # parallel test workers train only once
        if path.is_file() and not retrain:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model = load_checkpoint(saved["model"], arch)
            model.train_seconds = float(saved["train_seconds"])
            model.train_cpu_seconds = float(saved["train_cpu_seconds"])
            return model
        x_tr, y_tr, _, _ = load_digits_split()
        recipe = RECIPES[variant]
        t0, c0 = time.perf_counter(), time.process_time()
        if variant == "shiftadd":
            dense = pretrained_digits("dense", cache_dir=cache_dir, progress=progress)
            model = VisionTransformer(arch)
            model.load_state_dict(dense.state_dict())
            project_shift_weights(model)
        else:
            model = _fresh_model(arch, recipe.seed)
        train_model(model, x_tr, y_tr, recipe, progress)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"model": model.state_dict(), "train_seconds": seconds,
                    "train_cpu_seconds": cpu_seconds, "variant": variant}, tmp)
        os.replace(tmp, path)
    model.train_seconds = seconds
    model.train_cpu_seconds = cpu_seconds
    return model


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (other processes wait)."""
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
