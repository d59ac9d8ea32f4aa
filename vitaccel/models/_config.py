"""Model descriptions: frozen configuration dataclasses for every reference ViT."""

from __future__ import annotations

from dataclasses import dataclass

from vitaccel.errors import UsageError

__all__ = ["ViTConfig", "MoEConfig", "ExitConfig", "ShiftAddConfig"]

EXIT_HEADS = ("linear", "local", "global")
EXIT_RULES = ("max_prob", "entropy")
SHIFTADD_LAYERS = ("mlp", "all_linear")


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise UsageError(what)


def _check_blocks(blocks: tuple[int, ...], depth: int, key: str, limit: int) -> None:
    _require(len(blocks) > 0, f"{key}: expected at least one block index")
    _require(
        all(0 <= b < limit for b in blocks),
        f"{key}: block indices {list(blocks)} must lie in [0, {limit - 1}] for depth {depth}",
    )
    _require(
        list(blocks) == sorted(set(blocks)),
        f"{key}: block indices {list(blocks)} must be strictly increasing",
    )


@dataclass(frozen=True)
class MoEConfig:
    """Mixture-of-experts MLP blocks (M^3ViT / Edge-MoE style).

    Every token (class token included) is routed by the gate of the current task: the gate is a
    linear layer ``D -> num_experts``, followed by a softmax over all experts; the ``top_k``
    largest probabilities are kept *without* renormalisation (ties go to the lower expert index)
    and ``out = sum_e prob_e * expert_e(x)`` over the selected experts.

    Attributes
    ----------
    num_experts : int
        Experts per MoE block.
    expert_hidden : int
        Hidden width of each expert MLP (``fc1: D -> expert_hidden``, ``fc2: expert_hidden -> D``).
    top_k : int
        Experts selected per token.
    num_tasks : int
        Number of tasks; each has its own gate.
    blocks : tuple of int
        Indices of the transformer blocks whose dense MLP is replaced by an MoE.
    gate_bias : bool
        Whether the gate linear layers have a bias.
    """

    num_experts: int
    expert_hidden: int
    top_k: int
    num_tasks: int
    blocks: tuple[int, ...]
    gate_bias: bool = True

    def __post_init__(self) -> None:
        _require(self.num_experts >= 1, "moe.num_experts: expected a positive integer")
        _require(self.expert_hidden >= 1, "moe.expert_hidden: expected a positive integer")
        _require(
            1 <= self.top_k <= self.num_experts,
            f"moe.top_k: expected 1..{self.num_experts} (num_experts), got {self.top_k}",
        )
        _require(self.num_tasks >= 1, "moe.num_tasks: expected a positive integer")


@dataclass(frozen=True)
class ExitConfig:
    """Early-exit heads (LGViT style).

    Attributes
    ----------
    blocks : tuple of int
        Indices of the blocks after which an exit head sits (the final head after the last block
        is always present and is not listed here).
    head : str
        ``"linear"`` (LayerNorm, class token + mean of patch tokens, linear classifier),
        ``"local"`` (local perception: 1x1 conv, GELU, 3x3 depthwise conv, GELU over the patch
        grid) or ``"global"`` (global aggregation: one residual self-attention layer).
    rule : str
        ``"max_prob"``: exit when the largest softmax probability is ``>= threshold``;
        ``"entropy"``: exit when the softmax entropy (nats) is ``<= threshold``.
    threshold : float
        The exit threshold of ``rule``.
    """

    blocks: tuple[int, ...]
    head: str = "linear"
    rule: str = "max_prob"
    threshold: float = 0.9

    def __post_init__(self) -> None:
        _require(
            self.head in EXIT_HEADS,
            f"exits.head: expected one of {', '.join(EXIT_HEADS)}, got {self.head!r}",
        )
        _require(
            self.rule in EXIT_RULES,
            f"exits.rule: expected one of {', '.join(EXIT_RULES)}, got {self.rule!r}",
        )
        if self.rule == "max_prob":
            _require(
                0.0 < self.threshold <= 1.0,
                f"exits.threshold: max_prob threshold must lie in (0, 1], got {self.threshold}",
            )
        else:
            _require(
                self.threshold >= 0.0,
                f"exits.threshold: entropy threshold must be >= 0 nats, got {self.threshold}",
            )


@dataclass(frozen=True)
class ShiftAddConfig:
    """Power-of-two (shift/add) linear layers (ShiftAddViT style).

    Each weight becomes ``sign * 2**p`` with the integer exponent ``p`` in ``[p_min, p_max]``;
    see :class:`vitaccel.models.ShiftLinear` for the exact rounding and zero rule.

    Attributes
    ----------
    p_min, p_max : int
        Exponent range (e.g. -8 and 0: weights 2^-8 .. 1 in magnitude).
    layers : str
        ``"mlp"``: the fc1/fc2 layers of dense MLPs and experts; ``"all_linear"``: additionally
        the attention qkv and proj layers. Patch embedding, gates and heads stay float.
    """

    p_min: int = -8
    p_max: int = 0
    layers: str = "all_linear"

    def __post_init__(self) -> None:
        _require(
            self.p_min <= self.p_max,
            f"shiftadd: p_min ({self.p_min}) must not exceed p_max ({self.p_max})",
        )
        _require(
            self.layers in SHIFTADD_LAYERS,
            f"shiftadd.layers: expected one of {', '.join(SHIFTADD_LAYERS)}, got {self.layers!r}",
        )


@dataclass(frozen=True)
class ViTConfig:
    """Shape and options of a Vision Transformer (timm ``VisionTransformer`` layout).

    The model takes pixels in ``[0, 1]`` of shape ``(B, in_chans, H, W)`` and normalises them
    as ``(x - mean) / std`` per channel before the patch embedding.

    Attributes
    ----------
    name : str
        Model name (preset name or the YAML file's ``name``).
    img_size : tuple of int
        Input ``(H, W)`` in pixels; both must be multiples of ``patch_size``.
    patch_size : int
        Square patch side in pixels.
    in_chans : int
        Input channels.
    embed_dim : int
        Token width ``D``.
    depth : int
        Number of transformer blocks.
    num_heads : int
        Attention heads (``D`` must be a multiple).
    mlp_hidden : int
        Hidden width of the dense MLPs.
    qkv_bias : bool
        Whether the qkv projection has a bias.
    class_token : bool
        Prepend a learned class token (otherwise the head pools the mean of patch tokens).
    distilled : bool
        DeiT distillation token and ``head_dist`` (requires ``class_token``).
    final_norm : bool
        LayerNorm after the last block.
    num_classes : int
        Classifier outputs; 0 means the model returns the token features ``(B, T, D)``.
    norm_eps : float
        LayerNorm epsilon (timm: 1e-6).
    mean, std : tuple of float
        Per-channel input normalisation (one value per input channel).
    moe, exits, shiftadd : optional sub-configurations
        Mixture-of-experts blocks, early-exit heads and shift/add linear layers.
    """

    name: str
    img_size: tuple[int, int]
    patch_size: int
    in_chans: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_hidden: int
    qkv_bias: bool = True
    class_token: bool = True
    distilled: bool = False
    final_norm: bool = True
    num_classes: int = 1000
    norm_eps: float = 1e-6
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    moe: MoEConfig | None = None
    exits: ExitConfig | None = None
    shiftadd: ShiftAddConfig | None = None

    def __post_init__(self) -> None:
        h, w = self.img_size
        for key in ("patch_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_hidden"):
            _require(getattr(self, key) >= 1, f"{key}: expected a positive integer")
        _require(
            h >= 1 and w >= 1 and h % self.patch_size == 0 and w % self.patch_size == 0,
            f"img_size: {h}x{w} must be positive multiples of patch_size {self.patch_size}",
        )
        _require(
            self.embed_dim % self.num_heads == 0,
            f"embed_dim: {self.embed_dim} is not a multiple of num_heads {self.num_heads}",
        )
        _require(self.num_classes >= 0, "num_classes: expected an integer >= 0")
        _require(self.norm_eps > 0, "norm_eps: expected a positive float")
        _require(
            not self.distilled or self.class_token,
            "distilled: a distillation token requires class_token: true",
        )
        for key in ("mean", "std"):
            _require(
                len(getattr(self, key)) == self.in_chans,
                f"{key}: expected {self.in_chans} values (one per input channel)",
            )
        _require(all(s > 0 for s in self.std), "std: expected positive values")
        if self.moe is not None:
            _check_blocks(self.moe.blocks, self.depth, "moe.blocks", self.depth)
        if self.exits is not None:
            _check_blocks(self.exits.blocks, self.depth, "exits.blocks", self.depth - 1)
            _require(self.num_classes > 0, "exits: early-exit heads need num_classes > 0")
            _require(
                self.exits.head != "local" or self.num_patches > 0,
                "exits.head: local heads need a patch grid",
            )

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patch grid ``(H / patch_size, W / patch_size)``."""
        return (self.img_size[0] // self.patch_size, self.img_size[1] // self.patch_size)

    @property
    def num_patches(self) -> int:
        """Number of patch tokens."""
        gh, gw = self.grid_size
        return gh * gw

    @property
    def num_prefix_tokens(self) -> int:
        """Class plus distillation tokens placed before the patch tokens."""
        return int(self.class_token) + int(self.distilled)

    @property
    def num_tokens(self) -> int:
        """Sequence length ``T`` = patches + class token + distillation token."""
        return self.num_patches + self.num_prefix_tokens

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.embed_dim // self.num_heads

    def is_moe_block(self, index: int) -> bool:
        """Whether block ``index`` uses a mixture of experts instead of the dense MLP."""
        return self.moe is not None and index in self.moe.blocks

    @property
    def num_tasks(self) -> int:
        """Valid values of the ``task`` input: ``range(num_tasks)`` (1 without MoE)."""
        return self.moe.num_tasks if self.moe is not None else 1
