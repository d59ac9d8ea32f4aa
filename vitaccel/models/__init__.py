"""Float PyTorch reference Vision Transformers, model zoo, checkpoints and training.

The models use timm's module and parameter names so that timm/DeiT checkpoints load unchanged.
"""

from vitaccel.models._checkpoint import load_checkpoint
from vitaccel.models._config import ExitConfig, MoEConfig, ShiftAddConfig, ViTConfig
from vitaccel.models._evaluate import ExitReport, accuracy, exit_report
from vitaccel.models._moe import MoE, top_k_route
from vitaccel.models._shiftadd import ShiftLinear, pow2_quantize, to_shiftadd
from vitaccel.models._stats import count_macs, count_params, exit_macs
from vitaccel.models._train import (
    DIGITS_VARIANTS,
    TrainRecipe,
    cache_dir,
    pretrained_digits,
    train_model,
)
from vitaccel.models._vit import VisionTransformer, build_model
from vitaccel.models._zoo import PRESETS, get_config

__all__ = [
    "ViTConfig",
    "MoEConfig",
    "ExitConfig",
    "ShiftAddConfig",
    "PRESETS",
    "get_config",
    "build_model",
    "VisionTransformer",
    "MoE",
    "top_k_route",
    "ShiftLinear",
    "pow2_quantize",
    "to_shiftadd",
    "load_checkpoint",
    "count_params",
    "count_macs",
    "exit_macs",
    "accuracy",
    "ExitReport",
    "exit_report",
    "DIGITS_VARIANTS",
    "TrainRecipe",
    "cache_dir",
    "pretrained_digits",
    "train_model",
]
