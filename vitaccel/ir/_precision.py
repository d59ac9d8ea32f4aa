"""Precision configurations: which fixed-point format each tensor role gets, per layer."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import yaml

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType

__all__ = ["Auto", "Precision", "PRECISION_PRESETS", "CORE_ROLES", "get_precision"]


@dataclass(frozen=True)
class Auto:
    """A format whose integer bits are chosen from observed ranges (calibration or weights).

    Attributes
    ----------
    width : int
        Total bits W of the chosen ``ap_fixed<W, I>``.
    signed : bool
        Whether the format is signed.
    """

    width: int
    signed: bool = True

    def __str__(self) -> str:
        return f"auto<{self.width}>" if self.signed else f"auto_unsigned<{self.width}>"

    def choose(self, max_abs: float) -> FixedType:
        """The format of this width with the fewest integer bits that holds ``max_abs``.

        Parameters
        ----------
        max_abs : float
            Largest magnitude observed (value units); for unsigned formats the largest value.
        """
        sign = 1 if self.signed else 0
        int_bits = sign + 1 - self.width  # smallest I we try: almost all bits fractional
        while True:
            t = FixedType(self.width, int_bits, self.signed)
            if t.max_value >= max_abs and (not self.signed or -t.min_value >= max_abs):
                return t
            int_bits += 1


FormatSpec = FixedType | Auto | None

CORE_ROLES: dict[str, str] = {
    "input": "image pixels in [0, 1)",
    "patch.weight": "patch-embedding weights (mean/std normalisation folded in)",
    "patch.bias": "patch-embedding bias",
    "embed": "class/distillation tokens and positional embedding",
    "weight": "linear-layer weights (qkv, proj, fc1, fc2)",
    "bias": "linear-layer biases outside attention (fc1, fc2)",
    "attn.bias": "attention linear biases (qkv, proj)",
    "norm.gamma": "LayerNorm scale",
    "norm.beta": "LayerNorm shift",
    "act": "activations between units",
    "product": "format each product is cast to before it is added ('none': full precision)",
    "accum": "linear-engine accumulator, the bias its initial value ('none': exact, full "
             "precision, sized per layer)",
    "attn.score": "QK^T accumulator = softmax input ('none': exact)",
    "attn.accum": "A.V accumulator ('none': exact)",
    "head.weight": "classifier weights",
    "head.bias": "classifier bias",
    "logits": "classifier output",
    "moe.hidden": "expert hidden buffer (GELU output of an expert's fc1)",
    "moe.scaled": "gate probability times expert output, cast before the scatter add",
    "moe.accum": "MoE scatter accumulator out[p] (starts at 0, one add per selected expert)",
    "exit.pool": "exit-head pooled feature (class token + mean of the patch tokens)",
    "exit.prob": "max softmax probability of an exit head and its threshold (max_prob rule)",
    "exit.entropy": "softmax entropy (nats) of an exit head and its threshold (entropy rule)",
    "exit.log_table": "ln(m) ROM over [1, 2] of the entropy rule",
    "shift.term": "shift/add linears: format each shifted term +-x*2^p is assigned to (floor)",
}

_AUTO_RE = re.compile(r"^auto(_unsigned)?(?:<\s*(\d+)\s*>)?$")


def _unit_roles() -> dict[str, str]:
    from vitaccel.units import unit_roles

    return unit_roles()


def known_roles() -> dict[str, str]:
    """Every role a precision configuration may set: core roles plus the units' internal ones."""
    return {**CORE_ROLES, **_unit_roles()}


def parse_format(text: object, where: str, base: FormatSpec = None) -> FormatSpec:
    """Parse one YAML format value: ``ap_fixed<...>``, ``none``, ``auto`` or ``auto<W>``."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "none"):
        return None
    if not isinstance(text, str):
        raise UsageError(
            f"{where}: expected a format string such as 'ap_fixed<16,6>', got {text!r}"
        )
    m = _AUTO_RE.match(text.strip())
    if m:
        if m.group(2):
            return Auto(int(m.group(2)), signed=m.group(1) is None)
        if isinstance(base, (FixedType, Auto)):
            return Auto(base.width, signed=base.signed if m.group(1) is None else False)
        raise UsageError(f"{where}: 'auto' needs a width here (no base format): write 'auto<W>'")
    try:
        return FixedType.parse(text)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class Precision:
    """Formats by tensor role, with per-layer overrides.

    Attributes
    ----------
    name : str
        Preset name or YAML file name.
    roles : Mapping of str to FixedType, Auto or None
        The format of each role; None means full precision (only for ``product``).
    layers : Mapping of str to Mapping
        Overrides by layer-name pattern (fnmatch, e.g. ``blocks.*.mlp.fc1``), applied in order.
    """

    name: str
    roles: Mapping[str, FormatSpec]
    layers: Mapping[str, Mapping[str, FormatSpec]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", MappingProxyType(dict(self.roles)))
        object.__setattr__(
            self, "layers",
            MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self.layers.items()}),
        )

    def fmt(self, role: str, layer: str | None = None) -> FormatSpec:
        """Format of ``role`` in ``layer`` (the last matching override wins)."""
        spec = self.roles.get(role, _MISSING)
        if layer is not None:
            for pattern, overrides in self.layers.items():
                if role in overrides and fnmatch.fnmatchcase(layer, pattern):
                    spec = overrides[role]
        if spec is _MISSING:
            raise UsageError(f"precision {self.name!r} sets no format for role {role!r}")
        return spec

    def check_layers(self, layer_names: Iterable[str]) -> None:
        """Raise if an override pattern matches no layer of the model."""
        names = list(layer_names)
        for pattern in self.layers:
            if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
                raise UsageError(
                    f"precision {self.name!r}: layer override {pattern!r} matches no layer "
                    f"(layers are named like {names[min(3, len(names) - 1)]!r})"
                )

    def with_roles(self, name: str | None = None, **roles: FormatSpec) -> Precision:
        """A copy with some roles replaced (role names with '.' passed via a dict)."""
        return Precision(name or self.name, {**self.roles, **roles}, self.layers)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Precision:
        """Load a precision YAML file (keys: name, base, roles, layers); unknown keys are errors."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise UsageError(f"{path}: cannot read precision file ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise UsageError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        return cls.from_dict(data, source=str(path), default_name=path.stem)

    @classmethod
    def from_dict(cls, data: object, *, source: str, default_name: str) -> Precision:
        """Build a precision from a parsed YAML mapping; ``source`` names it in errors."""
        if not isinstance(data, dict):
            raise UsageError(f"{source}: expected a mapping with keys name/base/roles/layers")
        unknown = sorted(set(data) - {"name", "base", "roles", "layers"})
        if unknown:
            raise UsageError(
                f"{source}: unknown key {unknown[0]!r} (expected name, base, roles, layers)"
            )
        base_name = data.get("base")
        if base_name is not None and base_name not in PRECISION_PRESETS:
            raise UsageError(
                f"{source}: base: unknown preset {base_name!r} "
                f"(expected one of {sorted(PRECISION_PRESETS)})"
            )
        base = PRECISION_PRESETS[base_name].roles if base_name else {}
        valid = known_roles()
        roles = dict(base)
        for key, value in _mapping(data.get("roles", {}), f"{source}: roles").items():
            if key not in valid:
                raise UsageError(
                    f"{source}: roles.{key}: unknown role (expected one of {sorted(valid)})"
                )
            roles[key] = parse_format(value, f"{source}: roles.{key}", base.get(key))
        missing = sorted(r for r in CORE_ROLES if r not in roles)
        if missing:
            raise UsageError(f"{source}: roles: missing {missing} (or set base: to a preset)")
        layers: dict[str, dict[str, FormatSpec]] = {}
        for pattern, overrides in _mapping(data.get("layers", {}), f"{source}: layers").items():
            where = f"{source}: layers.{pattern}"
            layer_roles = {}
            for key, value in _mapping(overrides, where).items():
                if key not in valid:
                    raise UsageError(
                        f"{where}.{key}: unknown role (expected one of {sorted(valid)})"
                    )
                layer_roles[key] = parse_format(value, f"{where}.{key}", roles.get(key))
            layers[str(pattern)] = layer_roles
        return cls(str(data.get("name", default_name)), roles, layers)


_MISSING = object()


def _mapping(value: object, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _p(text: str) -> FixedType:
    return FixedType.parse(text)


_EDGE_MOE = {
    "input": _p("ap_ufixed<8,0>"),
    "patch.weight": _p("ap_fixed<16,0>"),
    "patch.bias": _p("ap_fixed<16,5>"),
    "embed": _p("ap_fixed<32,10>"),
    "weight": _p("ap_fixed<16,2>"),
    "bias": _p("ap_fixed<16,5>"),
    "attn.bias": _p("ap_fixed<16,7>"),
    "norm.gamma": _p("ap_fixed<16,5>"),
    "norm.beta": _p("ap_fixed<16,5>"),
    "act": _p("ap_fixed<32,10>"),
    "product": _p("ap_fixed<32,10>"),
    "accum": _p("ap_fixed<32,10>"),
    "attn.score": _p("ap_fixed<32,10>"),
    "attn.accum": _p("ap_fixed<32,10>"),
    "head.weight": _p("ap_fixed<16,2>"),
    "head.bias": _p("ap_fixed<16,5>"),
    "logits": _p("ap_fixed<32,10>"),
    "moe.hidden": _p("ap_fixed<32,10>"),
    "moe.scaled": _p("ap_fixed<32,10>"),
    "moe.accum": _p("ap_fixed<32,10>"),
    "exit.pool": _p("ap_fixed<32,10>"),
    "exit.prob": _p("ap_ufixed<24,1>"),
    "exit.entropy": _p("ap_fixed<32,6>"),
    "exit.log_table": _p("ap_ufixed<18,0>"),
    "shift.term": _p("ap_fixed<32,10>"),
}

_W16A16 = {
    "input": _p("ap_ufixed<8,0>"),
    "patch.weight": Auto(16),
    "patch.bias": Auto(16),
    "embed": Auto(16),
    "weight": Auto(16),
    "bias": Auto(16),
    "attn.bias": Auto(16),
    "norm.gamma": Auto(16),
    "norm.beta": Auto(16),
    "act": Auto(16),
    "product": None,
    "accum": None,
    "attn.score": None,
    "attn.accum": None,
    "head.weight": Auto(16),
    "head.bias": Auto(16),
    "logits": Auto(16),
    "moe.hidden": _p("ap_fixed<16,6>"),
    "moe.scaled": _p("ap_fixed<48,20>"),
    "moe.accum": _p("ap_fixed<48,20>"),
    "exit.pool": _p("ap_fixed<16,6>"),
    "exit.prob": _p("ap_ufixed<16,1>"),
    "exit.entropy": _p("ap_fixed<16,5>"),
    "exit.log_table": _p("ap_ufixed<16,0>"),
    "shift.term": _p("ap_fixed<48,20>"),
}

_W8A8 = {
    "input": _p("ap_ufixed<8,0>"),
    "patch.weight": Auto(8),
    "patch.bias": Auto(16),
    "embed": Auto(8),
    "weight": Auto(8),
    "bias": Auto(16),
    "attn.bias": Auto(16),
    "norm.gamma": Auto(8),
    "norm.beta": Auto(8),
    "act": Auto(8),
    "product": None,
    "accum": None,
    "attn.score": None,
    "attn.accum": None,
    "head.weight": Auto(8),
    "head.bias": Auto(16),
    "logits": Auto(16),
    "moe.hidden": _p("ap_fixed<8,4>"),
    "moe.scaled": _p("ap_fixed<32,16>"),
    "moe.accum": _p("ap_fixed<32,16>"),
    "exit.pool": _p("ap_fixed<8,4>"),
    "exit.prob": _p("ap_ufixed<9,1>"),
    "exit.entropy": _p("ap_fixed<16,5>"),
    "exit.log_table": _p("ap_ufixed<16,0>"),
    "shift.term": _p("ap_fixed<32,16>"),
}

# Internal formats of the nonlinear units (roles declared by the unit variants).
_UNITS_32 = {
    "softmax.z": _p("ap_fixed<32,12>"),
    "softmax.exp": _p("ap_ufixed<18,1>"),
    "softmax.sum": _p("ap_ufixed<32,10>"),
    "softmax.recip_table": _p("ap_ufixed<18,1>"),
    "softmax.recip": _p("ap_ufixed<32,1>"),
    "softmax.prob": _p("ap_ufixed<24,1>"),
    "gelu.table": _p("ap_ufixed<22,0>"),
    "gelu.lut": _p("ap_fixed<22,4>"),
    "gelu.poly": _p("ap_fixed<32,10>"),
    "gelu.out": _p("ap_fixed<32,10>"),
    "layernorm.mean": _p("ap_fixed<32,10>"),
    "layernorm.centered": _p("ap_fixed<32,10>"),
    "layernorm.var": _p("ap_ufixed<48,20>"),
    "layernorm.rsqrt_table": _p("ap_ufixed<18,1>"),
    "layernorm.rsqrt": _p("ap_ufixed<32,11>"),
    "layernorm.sqrt": _p("ap_ufixed<32,12>"),
    "layernorm.norm": _p("ap_fixed<32,8>"),
    "layernorm.out": _p("ap_fixed<32,10>"),
    "softmax.int_in": _p("ap_fixed<14,6>"),
    "gelu.ibert_in": _p("ap_fixed<24,10,AP_TRN,AP_SAT>"),
    "gelu.ivit_in": _p("ap_fixed<13,10,AP_RND,AP_SAT>"),
    "layernorm.int_in": _p("ap_fixed<22,10,AP_TRN,AP_SAT>"),
}

_UNITS_16 = {
    "softmax.z": _p("ap_fixed<24,12>"),
    "softmax.exp": _p("ap_ufixed<16,1>"),
    "softmax.sum": _p("ap_ufixed<24,10>"),
    "softmax.recip_table": _p("ap_ufixed<16,1>"),
    "softmax.recip": _p("ap_ufixed<24,1>"),
    "softmax.prob": _p("ap_ufixed<16,1>"),
    "gelu.table": _p("ap_ufixed<16,0>"),
    "gelu.lut": _p("ap_fixed<16,4>"),
    "gelu.poly": _p("ap_fixed<24,10>"),
    "gelu.out": _p("ap_fixed<24,10>"),
    "layernorm.mean": _p("ap_fixed<24,10>"),
    "layernorm.centered": _p("ap_fixed<24,10>"),
    "layernorm.var": _p("ap_ufixed<32,16>"),
    "layernorm.rsqrt_table": _p("ap_ufixed<16,1>"),
    "layernorm.rsqrt": _p("ap_ufixed<24,11>"),
    "layernorm.sqrt": _p("ap_ufixed<24,12>"),
    "layernorm.norm": _p("ap_fixed<24,8>"),
    "layernorm.out": _p("ap_fixed<24,8>"),
    "softmax.int_in": _p("ap_fixed<14,6>"),
    "gelu.ibert_in": _p("ap_fixed<22,10,AP_TRN,AP_SAT>"),
    "gelu.ivit_in": _p("ap_fixed<12,9,AP_RND,AP_SAT>"),
    "layernorm.int_in": _p("ap_fixed<22,10,AP_TRN,AP_SAT>"),
}

_UNITS_8 = {**_UNITS_16, "softmax.prob": _p("ap_ufixed<9,1>")}

PRECISION_PRESETS: dict[str, Precision] = {
    "edge-moe": Precision("edge-moe", {**_UNITS_32, **_EDGE_MOE}),
    "w16a16": Precision("w16a16", {**_UNITS_16, **_W16A16}),
    "w8a8": Precision("w8a8", {**_UNITS_8, **_W8A8}),
}


def get_precision(name_or_path: str | Path | Precision) -> Precision:
    """A preset by name, or a precision YAML file by path."""
    if isinstance(name_or_path, Precision):
        return name_or_path
    text = str(name_or_path)
    if text in PRECISION_PRESETS:
        return PRECISION_PRESETS[text]
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return Precision.from_yaml(path)
    raise UsageError(
        f"--precision {text!r}: expected a preset ({', '.join(PRECISION_PRESETS)}) or a YAML file"
    )
