"""``vitaccel train-digits``: train (or load the cached) digits reference model, report accuracy."""

from __future__ import annotations

import argparse
import time

__all__ = ["register", "report_digits", "demo_step", "VARIANTS"]

# The keys of vitaccel.models.DIGITS_VARIANTS, spelled out so that building the parser does not
# import torch (a test keeps the two equal).
VARIANTS = ("dense", "moe", "early-exit", "shiftadd")


def report_digits(variant: str, *, retrain: bool = False, cache: str | None = None,
                  verbose: bool = True) -> dict[str, float]:
    """Train or load digits ``variant``, print its float test accuracy; return the numbers.

    Returns a dict with ``accuracy`` (task 0), ``train_seconds`` and ``train_cpu_seconds``
    (wall and CPU time, as recorded when it was trained), ``seconds`` (this call), plus
    ``accuracy_task<k>`` for further MoE tasks and ``exit_accuracy`` / ``early_share`` for
    early-exit models.
    """
    from vitaccel.data import load_digits_split
    from vitaccel.models import DIGITS_VARIANTS, accuracy, exit_report, pretrained_digits
    from vitaccel.models._train import digits_checkpoint_path

    def progress(epoch: int, epochs: int, loss: float) -> None:
        if verbose and (epoch % 10 == 0 or epoch == epochs):
            print(f"    epoch {epoch:3d}/{epochs}  loss {loss:.4f}", flush=True)

    path = digits_checkpoint_path(variant, cache)
    cached = path.is_file() and not retrain
    t0 = time.perf_counter()
    model = pretrained_digits(variant, cache_dir=cache, retrain=retrain, progress=progress)
    seconds = time.perf_counter() - t0
    _, _, x_te, y_te = load_digits_split()
    out = {"accuracy": accuracy(model, x_te, y_te), "seconds": seconds,
           "train_seconds": model.train_seconds, "train_cpu_seconds": model.train_cpu_seconds}
    cfg = model.cfg
    how = f"loaded from cache in {seconds:.1f} s" if cached else f"trained in {seconds:.1f} s"
    print(f"  {DIGITS_VARIANTS[variant]}: {how} (training took {model.train_seconds:.1f} s, "
          f"{model.train_cpu_seconds:.1f} s CPU); "
          f"{path}")
    print(f"  test accuracy (float, {len(y_te)} images): {100 * out['accuracy']:.2f} %")
    for task in range(1, cfg.num_tasks):
        out[f"accuracy_task{task}"] = accuracy(model, x_te, y_te, task)
        print(f"  test accuracy, task {task}: {100 * out[f'accuracy_task{task}']:.2f} %")
    if cfg.exits is not None:
        rep = exit_report(model, x_te, y_te)
        out["exit_accuracy"] = rep.accuracy
        out["early_share"] = rep.early_share
        print(f"  early exit ({cfg.exits.rule} threshold {cfg.exits.threshold}): accuracy "
              f"{100 * rep.accuracy:.2f} %, {100 * rep.early_share:.1f} % of images exit early, "
              f"{rep.mean_macs / rep.macs_per_exit[-1]:.2f}x the MACs of the full model")
        total = sum(rep.counts)
        for j, (blk, count, macs) in enumerate(
            zip(rep.exit_blocks, rep.counts, rep.macs_per_exit, strict=True)
        ):
            name = "final head" if j == len(rep.counts) - 1 else f"exit {j}"
            print(f"    {name:10s} after block {blk}: {count:4d} images "
                  f"({100 * count / total:5.1f} %), {macs} MACs")
    return out


def _run(args: argparse.Namespace) -> int:
    report_digits(args.variant, retrain=args.retrain, cache=args.cache_dir)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-digits",
        help="train (or load the cached) small ViT on scikit-learn's 8x8 digits",
        description="Train a small reference ViT on scikit-learn's bundled 8x8 digits on the CPU "
        "(seeded, deterministic), cache the checkpoint in the user cache directory "
        "($VITACCEL_CACHE_DIR, else $XDG_CACHE_HOME/vitaccel, else ~/.cache/vitaccel) and "
        "print its float test accuracy.",
    )
    p.add_argument("--variant", choices=VARIANTS, default="dense",
                   help="model variant (default: dense)")
    p.add_argument("--retrain", action="store_true",
                   help="train again even if a cached checkpoint exists")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="checkpoint cache directory (default: the user cache directory)")
    p.set_defaults(func=_run)


def demo_step(args: argparse.Namespace) -> None:
    """Demo: train or load the dense, MoE and early-exit digits models; print float accuracy."""
    for variant in ("dense", "moe", "early-exit"):
        report_digits(variant)
