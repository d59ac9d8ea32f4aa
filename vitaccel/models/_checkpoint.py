"""Loading timm/DeiT-format checkpoints into :class:`VisionTransformer`."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from vitaccel.errors import UsageError
from vitaccel.models._config import ViTConfig
from vitaccel.models._shiftadd import project_shift_weights
from vitaccel.models._vit import VisionTransformer, build_model

__all__ = ["load_checkpoint", "read_state_dict"]

_LIST_MAX = 8


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_LIST_MAX])
    return shown + (f" (+{len(names) - _LIST_MAX} more)" if len(names) > _LIST_MAX else "")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.pth``/``.pt`` (``torch.load(weights_only=True)``) or
    ``.safetensors``; a checkpoint dict with a ``model`` (or ``state_dict``) entry is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: checkpoint file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            try:
                data = load_file(str(path))
            except SafetensorError as exc:
                raise UsageError(f"{path}: not a readable safetensors file ({exc})") from None
        elif suffix in (".pth", ".pt", ".bin"):
            data = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise UsageError(
                f"{path}: unsupported checkpoint type {suffix!r}; expected .pth, .pt or "
                ".safetensors"
            )
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"{path}: not a readable PyTorch checkpoint ({reason})") from None
    return _unwrap(data, str(path))


def _unwrap(data: object, where: str) -> dict[str, torch.Tensor]:
    if isinstance(data, Mapping):
        for key in ("model", "state_dict", "model_state_dict"):
            if key in data and isinstance(data[key], Mapping):
                data = data[key]
                break
    if not isinstance(data, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()
    ):
        raise UsageError(
            f"{where}: expected a state dict of tensors (or a dict with a 'model' entry)"
        )
    return dict(data)


def load_checkpoint(
    path_or_state_dict: str | Path | Mapping[str, torch.Tensor],
    arch: ViTConfig | str | Path,
) -> VisionTransformer:
    """Build ``arch`` and load timm/DeiT-format weights into it (strictly).

    Parameters
    ----------
    path_or_state_dict : path or mapping
        A ``.pth``/``.pt``/``.safetensors`` file, or an in-memory state dict; either may be
        wrapped in a dict with a ``model`` entry (DeiT releases).
    arch : ViTConfig, preset name or YAML path
        The architecture the weights belong to.

    Returns
    -------
    VisionTransformer
        In eval mode. Shift/add layers are projected onto their power-of-two weights.

    Raises
    ------
    UsageError
        Unreadable file, or one message listing missing keys, unexpected keys and shape
        mismatches.
    """
    model = build_model(arch)
    if isinstance(path_or_state_dict, Mapping):
        where = "state dict"
        state = _unwrap(path_or_state_dict, where)
    else:
        where = str(path_or_state_dict)
        state = read_state_dict(path_or_state_dict)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if state[k].shape != own[k].shape
    )
    problems = []
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches (checkpoint vs model): {_listing(shapes)}")
    if problems:
        raise UsageError(
            f"{where}: does not fit model {model.cfg.name!r}: {'; '.join(problems)}"
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    project_shift_weights(model)
    return model.eval()
