"""Frontend: turn a float reference ViT into a quantized graph (the one IR)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType, mul_type, sum_type
from vitaccel.ir._graph import INPUT, Graph, Node, Param
from vitaccel.ir._precision import CORE_ROLES, Auto, Precision, get_precision

__all__ = ["Numerics", "build_graph", "Role", "VariantRef", "Plan"]

NONE_ALLOWED = ("product", "accum", "attn.score", "attn.accum")
"""Roles that may be ``none``: full-precision products, exact (full-precision) accumulators."""

PROVISIONAL = FixedType(64, 32)
"""Format that stands in for ``auto`` roles while their ranges are being observed."""


@dataclass(frozen=True)
class Numerics:
    """The hardware choices that change bits: unit variants and the attention schedule.

    Attributes
    ----------
    softmax, gelu, layernorm : str
        Variant names (keys of ``vitaccel.units`` registries).
    attention_order : {"standard", "reordered"}
        Key streaming order of the attention unit.
    parallel_queries : int
        P, query slots of the reordered attention.
    qk_kernel : {"mac", "binary"}
        QK^T by multipliers, or by popcount of binary Q/K codes (``vitaccel.units.attention``).
    av_kernel : {"mac", "log2"}
        A.V by multipliers, or by shifts with log2-quantized probabilities.
    log2_min_exp : int
        Smallest power of two kept by the log2 probabilities (FQ-ViT 4-bit codes: -15).
    """

    softmax: str = "online"
    gelu: str = "delta_table"
    layernorm: str = "rsqrt_table"
    attention_order: str = "standard"
    parallel_queries: int = 1
    qk_kernel: str = "mac"
    av_kernel: str = "mac"
    log2_min_exp: int = -15

    def __post_init__(self) -> None:
        for key, allowed in (("qk_kernel", ("mac", "binary")), ("av_kernel", ("mac", "log2"))):
            if getattr(self, key) not in allowed:
                raise UsageError(f"{key}: expected one of {', '.join(allowed)}, "
                                 f"got {getattr(self, key)!r}")
        if not isinstance(self.log2_min_exp, int) or self.log2_min_exp > 0:
            raise UsageError(f"log2_min_exp: expected an integer <= 0, got {self.log2_min_exp!r}")

    @classmethod
    def from_hw(cls, hw: Any) -> Numerics:
        """The numerics a hardware configuration (``vitaccel.hw.HwConfig``) implies."""
        return cls(
            softmax=hw.variants.softmax,
            gelu=hw.variants.gelu,
            layernorm=hw.variants.layernorm,
            attention_order=hw.attention.order,
            parallel_queries=hw.attention.parallel_queries,
            qk_kernel=hw.attention.qk_kernel,
            av_kernel=hw.attention.av_kernel,
        )


@dataclass(frozen=True)
class Role:
    """A node attribute whose value is the format of a precision role."""

    name: str


@dataclass(frozen=True)
class VariantRef:
    """A node attribute whose value is a unit variant built from the precision roles."""

    kind: str
    name: str
    options: tuple[tuple[str, Any], ...] = ()


@dataclass
class Plan:
    """A node before its formats are resolved (builder-internal, mutable while planning)."""

    name: str
    op: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    out_role: str | None
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, tuple[np.ndarray, str]] = field(default_factory=dict)
    out_fmt: Callable[[dict[str, Any]], FixedType] | None = None


Resolver = Callable[[str, str, str], FixedType | None]


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy().copy()


def _bias(linear: Any, n: int) -> np.ndarray:
    return _np(linear.bias) if linear.bias is not None else np.zeros(n)


def _weight(linear: Any) -> np.ndarray:
    quantized = getattr(linear, "quantized_weight", None)
    return _np(quantized() if callable(quantized) else linear.weight)


def _plan_model(model: Any, numerics: Numerics) -> list[Plan]:
    cfg = model.cfg
    d, t = cfg.embed_dim, cfg.num_tokens
    plans: list[Plan] = []

    conv = model.patch_embed.proj
    w = _np(conv.weight)  # (D, C, p, p)
    mean, std = np.asarray(cfg.mean), np.asarray(cfg.std)
    w_folded = w / std[None, :, None, None]
    b_folded = _np(conv.bias) - (w * (mean / std)[None, :, None, None]).sum(axis=(1, 2, 3))
    plans.append(Plan(
        "patch_embed", "patch_embed", (INPUT,), (cfg.num_patches, d), "act",
        attrs={"patch_size": cfg.patch_size, "acc_t": Role("accum"), "product_t": Role("product")},
        params={"weight": (w_folded.reshape(d, -1), "patch.weight"),
                "bias": (b_folded, "patch.bias")},
    ))
    prefix = [_np(tok)[0] for tok in (model.cls_token, model.dist_token) if tok is not None]
    plans.append(Plan(
        "pos_embed", "embed_tokens", ("patch_embed",), (t, d), "act",
        attrs={"num_prefix": cfg.num_prefix_tokens},
        params={"prefix": (np.concatenate(prefix) if prefix else np.zeros((0, d)), "embed"),
                "pos": (_np(model.pos_embed)[0], "embed")},
    ))
    x = "pos_embed"
    exit_blocks = cfg.exits.blocks if cfg.exits is not None else ()
    for i, block in enumerate(model.blocks):
        x = _plan_block(plans, f"blocks.{i}", block, x, cfg, numerics)
        if i in exit_blocks:
            from vitaccel.ir._build_exits import plan_exit

            j = exit_blocks.index(i)
            plan_exit(plans, j, model.exits[j], i, x, cfg, numerics)
    if cfg.final_norm:
        plans.append(_norm_plan("norm", model.norm, x, (t, d), cfg, numerics))
        x = "norm"
    if cfg.num_classes > 0:
        plans.append(_head_plan(model, x, cfg))
    return plans


def _norm_plan(name: str, ln: Any, x: str, shape: tuple[int, ...], cfg: Any,
               numerics: Numerics) -> Plan:
    return Plan(
        name, "layernorm", (x,), shape, "act",
        attrs={"variant": VariantRef("layernorm", numerics.layernorm, (("eps", float(ln.eps)),)),
               "eps": float(ln.eps)},
        params={"gamma": (_np(ln.weight), "norm.gamma"), "beta": (_np(ln.bias), "norm.beta")},
    )


def _linear_plan(name: str, lin: Any, inputs: tuple[str, ...], rows: int, bias_role: str, *,
                 gelu: VariantRef | None = None, weight: np.ndarray | None = None,
                 bias: np.ndarray | None = None) -> Plan:
    from vitaccel.ir._build_shift import shift_kernel

    w = _weight(lin) if weight is None else weight
    b = _bias(lin, w.shape[0]) if bias is None else bias
    return shift_kernel(Plan(
        name, "linear", inputs, (rows, w.shape[0]), "act",
        attrs={"acc_t": Role("accum"), "product_t": Role("product"), "gelu": gelu,
               "residual": len(inputs) > 1, "kernel": "mac"},
        params={"weight": (w, "weight"), "bias": (b, bias_role)},
    ), lin)


def attention_plan(name: str, qkv: str, cfg: Any, numerics: Numerics) -> Plan:
    """The attention node reading the fused qkv output ``qkv`` (kernels from ``numerics``)."""
    hd = cfg.head_dim
    return Plan(
        name, "attention", (qkv,), (cfg.num_tokens, cfg.embed_dim), "act",
        attrs={"num_heads": cfg.num_heads, "head_dim": hd, "order": numerics.attention_order,
               "parallel_queries": numerics.parallel_queries, "score_t": Role("attn.score"),
               "product_t": Role("product"), "softmax": VariantRef("softmax", numerics.softmax),
               "acc_t": Role("attn.accum"), "qk_kernel": numerics.qk_kernel,
               "av_kernel": numerics.av_kernel, "log2_min_exp": numerics.log2_min_exp,
               "binary_shift": -round(0.5 * math.log2(hd))},
    )


def _plan_block(plans: list[Plan], pre: str, block: Any, x: str, cfg: Any,
                numerics: Numerics) -> str:
    t, d, hd = cfg.num_tokens, cfg.embed_dim, cfg.head_dim
    plans.append(_norm_plan(f"{pre}.norm1", block.norm1, x, (t, d), cfg, numerics))
    qkv = block.attn.qkv
    w, b = _weight(qkv), _bias(qkv, 3 * d)
    scale = hd**-0.5  # folded into the query rows so the unit needs no multiplier
    w[:d] *= scale
    b[:d] *= scale
    plans.append(_linear_plan(f"{pre}.attn.qkv", qkv, (f"{pre}.norm1",), t, "attn.bias",
                              weight=w, bias=b))
    plans.append(attention_plan(f"{pre}.attn", f"{pre}.attn.qkv", cfg, numerics))
    plans.append(_linear_plan(f"{pre}.attn.proj", block.attn.proj, (f"{pre}.attn", x), t,
                              "attn.bias"))
    res = f"{pre}.attn.proj"
    plans.append(_norm_plan(f"{pre}.norm2", block.norm2, res, (t, d), cfg, numerics))
    mlp = block.mlp
    if hasattr(mlp, "experts"):
        from vitaccel.ir._build_moe import plan_moe

        return plan_moe(plans, f"{pre}.mlp", mlp, f"{pre}.norm2", res, cfg, numerics)
    gelu = VariantRef("gelu", numerics.gelu)
    plans.append(_linear_plan(f"{pre}.mlp.fc1", mlp.fc1, (f"{pre}.norm2",), t, "bias", gelu=gelu))
    plans.append(_linear_plan(f"{pre}.mlp.fc2", mlp.fc2, (f"{pre}.mlp.fc1", res), t, "bias"))
    return f"{pre}.mlp.fc2"


def _head_plan(model: Any, x: str, cfg: Any) -> Plan:
    params = {"weight": (_weight(model.head), "head.weight"),
              "bias": (_bias(model.head, cfg.num_classes), "head.bias")}
    attrs: dict[str, Any] = {"acc_t": Role("accum"), "product_t": Role("product"),
                             "num_prefix": cfg.num_prefix_tokens}
    if cfg.distilled:
        attrs["pooling"] = "cls_dist"
        params["weight_dist"] = (_weight(model.head_dist), "head.weight")
        params["bias_dist"] = (_bias(model.head_dist, cfg.num_classes), "head.bias")
    elif cfg.class_token:
        attrs["pooling"] = "cls"
    else:
        attrs["pooling"] = "mean"
        attrs["pool_t"] = Role("act")
        params["mean_scale"] = (np.array(1.0 / cfg.num_patches), "mean_scale")
    return Plan("head", "head", (x,), (cfg.num_classes,), "logits", attrs=attrs, params=params)


MEAN_SCALE_FMT = FixedType(18, 1, signed=False)
"""Format of the 1/patches constant of mean pooling (rounded to nearest)."""


def _term(x_t: FixedType, w_t: FixedType, product_t: FixedType | None) -> FixedType:
    return product_t if product_t is not None else mul_type(x_t, w_t)


def _exact_linear(plan: Plan, key: str, attrs: dict, params: dict, fmts: dict) -> FixedType:
    x_t = attrs.get("pool_t") or fmts[plan.inputs[0]]
    w, b = params["weight"], params["bias"]
    return sum_type(_term(x_t, w.fmt, attrs["product_t"]), w.shape[1], b.fmt)


def _union(*fmts: FixedType) -> FixedType:
    """The narrowest format that holds every value of each of ``fmts``."""
    signed = any(f.signed for f in fmts)
    int_bits = max(f.int_bits + int(signed and not f.signed) for f in fmts)
    frac_bits = max(f.frac_bits for f in fmts)
    return FixedType(int_bits + frac_bits, int_bits, signed)


def _exact_conv(plan: Plan, key: str, attrs: dict, params: dict, fmts: dict) -> FixedType:
    w, b = params["weight"], params["bias"]
    taps = int(np.prod(w.shape[1:]))
    return sum_type(_term(fmts[plan.inputs[0]], w.fmt, attrs["product_t"]), taps,
                              b.fmt)


def _exact_moe(plan: Plan, key: str, attrs: dict, params: dict, fmts: dict) -> FixedType:
    """One accumulator serves the gate, fc1 and fc2 engines: the union of their exact formats."""
    x_t, p = fmts[plan.inputs[0]], attrs["product_t"]
    sums = [
        sum_type(_term(x_t, params[f"{n}_weight"].fmt, p),
                           params[f"{n}_weight"].shape[-1], params[f"{n}_bias"].fmt)
        for n in ("gate", "fc1")
    ]
    sums.append(sum_type(_term(attrs["hidden_t"], params["fc2_weight"].fmt, p),
                                   params["fc2_weight"].shape[-1], params["fc2_bias"].fmt))
    return _union(*sums)


def _exact_attention(plan: Plan, key: str, attrs: dict, params: dict, fmts: dict) -> FixedType:
    a_t = fmts[plan.inputs[0]]
    if key == "score_t":
        return sum_type(_term(a_t, a_t, attrs["product_t"]), attrs["head_dim"])
    return sum_type(_term(attrs["softmax"].out_t, a_t, attrs["product_t"]),
                              plan.shape[0])


EXACT_ACCUMULATOR: dict[str, Callable[[Plan, str, dict, dict, dict], FixedType]] = {
    "linear": _exact_linear,
    "patch_embed": _exact_linear,
    "head": _exact_linear,
    "attention": _exact_attention,
    "exit_head": _exact_linear,
    "grid_conv": _exact_conv,
    "moe": _exact_moe,
}
"""Per op: the full-precision accumulator used when an accumulator role is ``none``."""


def _resolve_attr(value: Any, layer: str, resolve: Resolver) -> Any:
    if isinstance(value, Role):
        return resolve(value.name, layer, "attr")
    if isinstance(value, VariantRef):
        from vitaccel.units import variant_registries

        registry = variant_registries()[value.kind]
        if value.name not in registry:
            raise UsageError(
                f"unknown {value.kind} variant {value.name!r} (expected one of {sorted(registry)})"
            )

        def fmt(role: str) -> FixedType:
            f = resolve(role, layer, "attr")
            if f is None:
                raise UsageError(f"precision role {role!r} of {layer} cannot be 'none'")
            return f

        return registry[value.name].build(fmt, **dict(value.options))
    return value


def _materialize(plans: list[Plan], resolve: Resolver, input_fmt: FixedType, *,
                 provisional: bool = False) -> list[Node]:
    nodes = []
    fmts = {INPUT: input_fmt}
    for plan in plans:
        params = {}
        for key, (values, role) in plan.params.items():
            if isinstance(role, FixedType):  # a fixed storage format (shift/add codes)
                fmt = role
            else:
                fmt = MEAN_SCALE_FMT if role == "mean_scale" else resolve(role, plan.name, key)
            params[key] = Param.quantize(values, fmt)
        attrs = {k: _resolve_attr(v, plan.name, resolve) for k, v in plan.attrs.items()}
        for key, value in plan.attrs.items():
            if attrs[key] is None and isinstance(value, Role) and value.name != "product":
                attrs[key] = (PROVISIONAL if provisional else
                              EXACT_ACCUMULATOR[plan.op](plan, key, attrs, params, fmts))
        fmt = resolve(plan.out_role, plan.name, "out")
        nodes.append(Node(plan.name, plan.op, plan.inputs, plan.shape, fmt, attrs, params))
        fmts[plan.name] = fmt
    return nodes


def _observed(plans: list[Plan], ranges: dict[str, float]) -> Callable[[str, str, str], float]:
    by_name = {p.name: p for p in plans}

    def max_abs(role: str, layer: str, key: str) -> float:
        plan = by_name[layer]
        if key in plan.params:
            return float(np.max(np.abs(plan.params[key][0]), initial=0.0))
        if key == "out":
            return ranges[layer]
        if key == "attr" and plan.inputs[0] in ranges:
            return ranges[plan.inputs[0]]  # an internal format (e.g. pooling) of the input
        raise UsageError(f"precision role {role!r} of {layer} cannot be 'auto' (no observed range)")

    return max_abs


def build_graph(
    model: Any,
    precision: str | Precision = "edge-moe",
    *,
    numerics: Numerics | None = None,
    calibration: np.ndarray | None = None,
    name: str | None = None,
) -> Graph:
    """Quantize a float reference model into the graph IR.

    Parameters
    ----------
    model : vitaccel.models.VisionTransformer
        The float reference (eval mode is not required; no gradients are taken).
    precision : str or Precision
        Preset name, YAML path or Precision object.
    numerics : Numerics, optional
        Unit variants and attention schedule (default: ``Numerics()``; see ``Numerics.from_hw``).
    calibration : np.ndarray, optional
        Float pixels (B, C, H, W) in [0, 1) used to choose the integer bits of ``auto``
        activation roles; required when the precision has any.
    name : str, optional
        Graph name (default: the model config's name).

    Returns
    -------
    Graph
        Topologically ordered nodes; outputs are the logits (or features) node.
    """
    precision = get_precision(precision)
    numerics = numerics or Numerics()
    cfg = model.cfg
    plans = _plan_model(model, numerics)
    precision.check_layers([p.name for p in plans])
    input_fmt = precision.fmt("input")
    if not isinstance(input_fmt, FixedType):
        raise UsageError(f"precision {precision.name!r}: role 'input' needs a concrete format")

    def lookup(role: str, layer: str) -> Any:
        spec = precision.fmt(role, layer)
        if spec is None and role not in NONE_ALLOWED:
            raise UsageError(
                f"precision {precision.name!r}: role {role!r} of {layer} cannot be 'none'"
            )
        return spec

    needs_auto = any(isinstance(lookup(r, p.name), Auto) for p in plans
                     for r in _roles_of(p) if r in CORE_ROLES)
    ranges: dict[str, float] = {}
    if needs_auto:
        provisional = _materialize(plans, lambda r, layer, k: _provisional(lookup(r, layer)),
                                   input_fmt, provisional=True)
        graph0 = Graph(name or cfg.name, (cfg.in_chans, *cfg.img_size), input_fmt,
                       tuple(provisional), (provisional[-1].name,), cfg, precision)
        if calibration is None:
            if any(isinstance(lookup(p.out_role, p.name), Auto) for p in plans if p.out_role):
                raise UsageError(
                    f"precision {precision.name!r} has 'auto' activation formats: "
                    "calibration images are required"
                )
        else:
            from vitaccel.sim._reference import run_reference

            trace = run_reference(graph0, np.asarray(calibration, dtype=np.float64))
            ranges = {k: float(np.max(np.abs(v), initial=0.0)) for k, v in trace.items()}
    max_abs = _observed(plans, ranges)

    def resolve(role: str, layer: str, key: str) -> FixedType | None:
        spec = lookup(role, layer)
        if isinstance(spec, Auto):
            return spec.choose(max_abs(role, layer, key))
        return spec

    nodes = _materialize(plans, resolve, input_fmt)
    return Graph(name or cfg.name, (cfg.in_chans, *cfg.img_size), input_fmt, tuple(nodes),
                 (nodes[-1].name, *(n.name for n in nodes if n.op == "exit_head")), cfg,
                 precision)


def _provisional(spec: Any) -> Any:
    return PROVISIONAL if isinstance(spec, Auto) else spec


def _roles_of(plan: Plan) -> list[str]:
    roles = [role for _, role in plan.params.values()
             if role != "mean_scale" and not isinstance(role, FixedType)]
    roles += [v.name for v in plan.attrs.values() if isinstance(v, Role)]
    if plan.out_role:
        roles.append(plan.out_role)
    return roles
