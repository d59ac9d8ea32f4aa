"""The op kinds of the graph IR: what each node computes, independent of how it is built."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OPS", "OpSpec"]


@dataclass(frozen=True)
class OpSpec:
    """Documentation and structure of one op kind.

    Attributes
    ----------
    name : str
        The key used in ``Node.op``.
    summary : str
        One line saying what the op computes.
    attrs : tuple of str
        Attribute keys every node of this kind carries.
    params : tuple of str
        Parameter keys every node of this kind carries (optional ones are not listed).
    """

    name: str
    summary: str
    attrs: tuple[str, ...]
    params: tuple[str, ...]


OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in (
        OpSpec(
            "patch_embed",
            "non-overlapping conv as a matmul: (C,H,W) pixels -> (patches, D) tokens",
            ("patch_size", "acc_t", "product_t"),
            ("weight", "bias"),
        ),
        OpSpec(
            "embed_tokens",
            "prepend class (and distillation) tokens, then add the positional embedding",
            ("num_prefix",),
            ("prefix", "pos"),
        ),
        OpSpec(
            "layernorm",
            "LayerNorm over the last axis by the node's LayerNorm variant",
            ("variant",),
            ("gamma", "beta"),
        ),
        OpSpec(
            "linear",
            "unified linear engine: bias + x W^T, optional fused GELU and residual add; kernel"
            " 'mac' (multipliers) or 'shift' (power-of-two weights: shifts and adds)",
            ("acc_t", "product_t", "gelu", "residual", "kernel"),
            ("weight", "bias"),
        ),
        OpSpec(
            "attention",
            "multi-head attention on a fused (T, 3D) qkv tensor: QK^T, softmax, A.V",
            ("num_heads", "head_dim", "order", "parallel_queries", "score_t", "product_t",
             "softmax", "acc_t", "qk_kernel", "av_kernel", "log2_min_exp", "binary_shift"),
            (),
        ),
        OpSpec(
            "head",
            "pool the token features (class token, class+distillation, or mean) and classify",
            ("pooling", "acc_t", "product_t"),
            ("weight", "bias"),
        ),
        OpSpec(
            "moe",
            "task-gated mixture of experts: gate, top-k, gather -> expert MLP -> scaled scatter,"
            " residual add (vitaccel.units.moe)",
            ("num_experts", "top_k", "acc_t", "product_t", "softmax", "gelu", "hidden_t",
             "scaled_t", "combine_t", "select"),
            ("gate_weight", "gate_bias", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"),
        ),
        OpSpec(
            "grid_conv",
            "1x1 or 3x3-depthwise conv on the patch grid, fused GELU, prefix tokens passed"
            " through (vitaccel.units.exits)",
            ("kind", "grid", "num_prefix", "acc_t", "product_t", "gelu"),
            ("weight", "bias"),
        ),
        OpSpec(
            "exit_head",
            "early-exit classifier (class token + patch mean) and the fixed-point exit decision"
            " (vitaccel.units.exits)",
            ("rule", "exit_index", "after_block", "num_prefix", "pool_t", "acc_t", "product_t",
             "softmax", "log_t", "log_step_log2", "ln2_frac_bits"),
            ("weight", "bias", "mean_scale", "threshold"),
        ),
    )
}
