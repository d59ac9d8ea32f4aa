"""Deterministic digits training, the checkpoint cache and ``vitaccel train-digits``.

Recipes are shrunk to one epoch here; the real cached models are never retrained by tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vitaccel.cli import main
from vitaccel.cli._train import VARIANTS
from vitaccel.data import load_digits_split
from vitaccel.models import DIGITS_VARIANTS, TrainRecipe, build_model, cache_dir, train_model
from vitaccel.models import _train as train_mod
from vitaccel.models._train import digits_checkpoint_path, pretrained_digits

TINY = TrainRecipe(epochs=1, batch_size=128, warmup_epochs=1)


@pytest.fixture
def tiny_recipes(monkeypatch: pytest.MonkeyPatch) -> None:
    for variant in DIGITS_VARIANTS:
        monkeypatch.setitem(train_mod.RECIPES, variant, TINY)


def _train_once(n: int = 128) -> tuple[dict[str, torch.Tensor], list[float]]:
    x, y, _, _ = load_digits_split()
    torch.manual_seed(0)
    model = build_model("digits-dense")
    losses: list[float] = []
    recipe = TrainRecipe(epochs=3, batch_size=64, warmup_epochs=1, lr=3e-3)
    train_model(model, x[:n], y[:n], recipe, lambda e, n_, loss: losses.append(loss))
    return model.state_dict(), losses


def test_training_is_deterministic_and_learns() -> None:
    a, losses = _train_once()
    b, _ = _train_once()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(losses) == 3 and losses[-1] < losses[0]


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VITACCEL_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "b"))
    assert cache_dir() == tmp_path / "a"
    monkeypatch.delenv("VITACCEL_CACHE_DIR")
    assert cache_dir() == tmp_path / "b" / "vitaccel"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "vitaccel"


def test_pretrained_is_cached_and_keyed_by_recipe(
    tiny_recipes: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = digits_checkpoint_path("dense", tmp_path)
    first = pretrained_digits("dense", cache_dir=tmp_path)
    assert path.is_file() and first.train_seconds > 0
    mtime = path.stat().st_mtime_ns
    again = pretrained_digits("dense", cache_dir=tmp_path)
    assert path.stat().st_mtime_ns == mtime
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in first.state_dict().items())
    retrained = pretrained_digits("dense", cache_dir=tmp_path, retrain=True)
    assert all(torch.equal(v, retrained.state_dict()[k]) for k, v in first.state_dict().items())
    monkeypatch.setitem(train_mod.RECIPES, "dense", TrainRecipe(epochs=1, batch_size=128, lr=1e-3))
    assert digits_checkpoint_path("dense", tmp_path) != path
    assert digits_checkpoint_path("shiftadd", tmp_path) != digits_checkpoint_path(
        "shiftadd", tmp_path / "x"
    )


def test_shiftadd_variant_has_power_of_two_weights(tiny_recipes: None, tmp_path: Path) -> None:
    model = pretrained_digits("shiftadd", cache_dir=tmp_path)
    w = model.blocks[0].attn.qkv.weight.abs()
    nonzero = w[w > 0]
    torch.testing.assert_close(torch.exp2(torch.round(torch.log2(nonzero))), nonzero)
    assert nonzero.max() <= 1.0 and nonzero.min() >= 2.0**-8
    assert digits_checkpoint_path("dense", tmp_path).is_file()


def test_cli_variants_match_library() -> None:
    assert VARIANTS == tuple(DIGITS_VARIANTS)


def test_cli_train_digits_early_exit(
    tiny_recipes: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["train-digits", "--variant", "early-exit", "--cache-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "test accuracy (float, 360 images)" in out
    assert "exit 0     after block 1" in out and "final head after block 3" in out
    rc = main(["train-digits", "--variant", "early-exit", "--cache-dir", str(tmp_path)])
    assert rc == 0 and "loaded from cache" in capsys.readouterr().out


def test_bad_variant() -> None:
    with pytest.raises(ValueError, match="variant"):
        pretrained_digits("sparse")
