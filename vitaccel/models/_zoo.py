"""Named model presets and YAML model descriptions."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from vitaccel.errors import UsageError
from vitaccel.models._config import ExitConfig, MoEConfig, ShiftAddConfig, ViTConfig

__all__ = ["PRESETS", "get_config"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _deit(name: str, dim: int, heads: int, distilled: bool = False) -> ViTConfig:
    return ViTConfig(
        name=name, img_size=(224, 224), patch_size=16, in_chans=3, embed_dim=dim, depth=12,
        num_heads=heads, mlp_hidden=4 * dim, distilled=distilled, num_classes=1000,
        mean=_IMAGENET_MEAN, std=_IMAGENET_STD,
    )


def _digits(name: str, **changes: Any) -> ViTConfig:
    base = ViTConfig(
        name=name, img_size=(8, 8), patch_size=4, in_chans=1, embed_dim=32, depth=4,
        num_heads=2, mlp_hidden=64, num_classes=10, mean=(0.0,), std=(1.0,),
    )
    return dataclasses.replace(base, **changes)


def _build_presets() -> dict[str, ViTConfig]:
    presets = [
        ViTConfig(
            name="vit-tiny", img_size=(224, 224), patch_size=16, in_chans=3, embed_dim=192,
            depth=12, num_heads=3, mlp_hidden=768, num_classes=1000,
        ),
        _deit("deit-tiny", 192, 3),
        _deit("deit-small", 384, 6),
        _deit("deit-base", 768, 12),
        _deit("deit-tiny-distilled", 192, 3, distilled=True),
        _deit("deit-small-distilled", 384, 6, distilled=True),
        _deit("deit-base-distilled", 768, 12, distilled=True),
        ViTConfig(
            name="edge-moe", img_size=(128, 256), patch_size=16, in_chans=3, embed_dim=192,
            depth=12, num_heads=3, mlp_hidden=768, num_classes=0,
            mean=_IMAGENET_MEAN, std=_IMAGENET_STD,
            moe=MoEConfig(
                num_experts=16, expert_hidden=384, top_k=2, num_tasks=2,
                blocks=(1, 3, 5, 7, 9, 11),
            ),
        ),
        _digits("digits-dense"),
        _digits(
            "digits-moe",
            moe=MoEConfig(num_experts=4, expert_hidden=64, top_k=2, num_tasks=2, blocks=(1, 3)),
        ),
        _digits(
            "digits-early-exit",
            exits=ExitConfig(blocks=(1, 2), head="linear", rule="max_prob", threshold=0.9),
        ),
        _digits("digits-shiftadd", shiftadd=ShiftAddConfig(p_min=-8, p_max=0)),
    ]
    return {cfg.name: cfg for cfg in presets}


PRESETS: Mapping[str, ViTConfig] = MappingProxyType(_build_presets())


# --- YAML ------------------------------------------------------------------------------------

# kind of every accepted key: "int", "bool", "float", "str", "ints", "floats", "size", "section"
_VIT_KEYS = {
    "name": "str", "img_size": "size", "patch_size": "int", "in_chans": "int",
    "embed_dim": "int", "depth": "int", "num_heads": "int", "mlp_hidden": "int",
    "mlp_ratio": "float", "qkv_bias": "bool", "class_token": "bool", "distilled": "bool",
    "final_norm": "bool", "num_classes": "int", "norm_eps": "float", "mean": "floats",
    "std": "floats", "base": "str", "moe": "section", "exits": "section", "shiftadd": "section",
}
_SECTIONS: dict[str, tuple[type, dict[str, str]]] = {
    "moe": (MoEConfig, {
        "num_experts": "int", "expert_hidden": "int", "top_k": "int", "num_tasks": "int",
        "blocks": "ints", "gate_bias": "bool",
    }),
    "exits": (ExitConfig, {
        "blocks": "ints", "head": "str", "rule": "str", "threshold": "float",
    }),
    "shiftadd": (ShiftAddConfig, {"p_min": "int", "p_max": "int", "layers": "str"}),
}
_KIND_TEXT = {
    "int": "an integer", "bool": "true or false", "float": "a number", "str": "a string",
    "ints": "a list of integers", "floats": "a list of numbers",
    "size": "an integer or a list [H, W] of integers", "section": "a mapping or null",
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _convert(value: Any, kind: str) -> Any:
    """Return ``value`` converted to ``kind``, or raise ``TypeError``."""
    if kind == "int" and _is_int(value):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "float" and _is_num(value):
        return float(value)
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "ints" and isinstance(value, list) and all(_is_int(v) for v in value):
        return tuple(value)
    if kind == "floats" and isinstance(value, list) and value and all(_is_num(v) for v in value):
        return tuple(float(v) for v in value)
    if kind == "size":
        if _is_int(value):
            return (value, value)
        if isinstance(value, list) and len(value) == 2 and all(_is_int(v) for v in value):
            return (value[0], value[1])
    if kind == "section" and (value is None or isinstance(value, dict)):
        return value
    raise TypeError(kind)


def _read_mapping(raw: Mapping[Any, Any], keys: dict[str, str], where: str, prefix: str) -> dict:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        full = f"{prefix}{key}"
        if key not in keys:
            raise UsageError(
                f"{where}: unknown key {full!r}; expected one of {', '.join(sorted(keys))}"
            )
        try:
            out[key] = _convert(value, keys[key])
        except TypeError:
            raise UsageError(
                f"{where}: key {full!r}: expected {_KIND_TEXT[keys[key]]}, got {value!r}"
            ) from None
    return out


def _config_from_yaml(path: Path) -> ViTConfig:
    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UsageError(f"{where}: cannot read model file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        raise UsageError(f"{where}: not valid YAML ({reason})") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: expected a mapping of model keys at the top level")
    fields = _read_mapping(raw, _VIT_KEYS, where, "")
    for section, (cls, keys) in _SECTIONS.items():
        if fields.get(section) is not None:
            sub = _read_mapping(fields[section], keys, where, f"{section}.")
            try:
                fields[section] = cls(**sub)
            except TypeError as exc:
                raise UsageError(f"{where}: section {section!r}: {exc}") from None
            except UsageError as exc:
                raise UsageError(f"{where}: {exc}") from None
    ratio = fields.pop("mlp_ratio", None)
    if ratio is not None and "mlp_hidden" in fields:
        raise UsageError(f"{where}: give either 'mlp_hidden' or 'mlp_ratio', not both")
    fields.setdefault("name", path.stem)
    base_name = fields.pop("base", None)
    try:
        if base_name is not None and base_name not in PRESETS:
            raise UsageError(
                f"key 'base': unknown preset {base_name!r}; expected one of {', '.join(PRESETS)}"
            )
        base = PRESETS[base_name] if base_name is not None else None
        if ratio is not None:
            dim = fields.get("embed_dim", base.embed_dim if base is not None else None)
            if dim is None:
                raise UsageError("key 'mlp_ratio' needs 'embed_dim'")
            fields["mlp_hidden"] = round(ratio * dim)
        if base is not None:
            return dataclasses.replace(base, **fields)
        return ViTConfig(**fields)
    except TypeError as exc:
        missing = sorted(
            f.name for f in dataclasses.fields(ViTConfig)
            if f.default is dataclasses.MISSING and f.name not in fields
        )
        detail = f"missing required keys {', '.join(missing)}" if missing else str(exc)
        raise UsageError(f"{where}: {detail}") from None
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


def get_config(name_or_path: str | Path | ViTConfig) -> ViTConfig:
    """Return the configuration of a preset, a YAML model file, or pass a config through.

    Parameters
    ----------
    name_or_path : str, Path or ViTConfig
        A preset name (see ``PRESETS``) or the path of a YAML file whose top-level keys are
        :class:`ViTConfig` field names (``img_size`` as ``N`` or ``[H, W]``; ``mlp_ratio`` may
        replace ``mlp_hidden``; ``base: <preset>`` starts from a preset; optional ``moe``,
        ``exits`` and ``shiftadd`` sections with the fields of their dataclasses).

    Raises
    ------
    UsageError
        Unknown preset, unreadable file, unknown key or wrong value type (naming file and key).
    """
    if isinstance(name_or_path, ViTConfig):
        return name_or_path
    text = str(name_or_path)
    if not isinstance(name_or_path, Path) and text in PRESETS:
        return PRESETS[text]
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise UsageError(f"{text}: model file not found")
        return _config_from_yaml(path)
    raise UsageError(
        f"unknown model {text!r}; expected a preset ({', '.join(PRESETS)}) or a .yaml file"
    )
