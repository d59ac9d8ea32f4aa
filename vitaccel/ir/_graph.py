"""The graph IR: one list of hardware-unit nodes read by the simulator, cost model and codegen."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType

__all__ = ["Graph", "Node", "Param", "INPUT"]

INPUT = "input"
"""Name under which every graph refers to its image input."""


def _frozen_array(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Param:
    """A parameter tensor: raw integer codes in ``fmt`` plus the float values they quantize.

    Attributes
    ----------
    raw : np.ndarray
        Raw codes (int64), value = raw * 2**-fmt.frac_bits. Read-only.
    fmt : FixedType
        Storage format of the parameter on the accelerator.
    ref : np.ndarray
        The float64 values of the reference model (before quantization). Read-only.
    """

    raw: np.ndarray
    fmt: FixedType
    ref: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw", _frozen_array(np.asarray(self.raw, dtype=np.int64)))
        object.__setattr__(self, "ref", _frozen_array(np.asarray(self.ref, dtype=np.float64)))
        if self.raw.shape != self.ref.shape:
            raise ValueError(f"Param raw shape {self.raw.shape} != ref shape {self.ref.shape}")

    @classmethod
    def quantize(cls, values: np.ndarray, fmt: FixedType) -> Param:
        """Quantize float ``values`` into ``fmt`` (ap_fixed assignment semantics)."""
        ref = np.asarray(values, dtype=np.float64)
        return cls(raw=fmt.quantize(ref), fmt=fmt, ref=ref)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.raw.shape)

    @property
    def value(self) -> np.ndarray:
        """The quantized values as float64."""
        return self.fmt.to_float(self.raw)

    @functools.cached_property
    def raw_t(self) -> np.ndarray:
        """``raw.T`` of a 2-D parameter as a C-contiguous read-only array (made once: the
        (in, out) weight layout of every product)."""
        return _frozen_array(np.ascontiguousarray(self.raw.T))


@dataclass(frozen=True, eq=False)
class Node:
    """One hardware unit invocation.

    Attributes
    ----------
    name : str
        Unique name, following the reference model's module names (``blocks.3.attn.qkv``).
    op : str
        Op kind; a key of ``vitaccel.ir.OPS``.
    inputs : tuple of str
        Names of the producing nodes (``INPUT`` for the image).
    shape : tuple of int
        Output shape for one image (no batch axis).
    fmt : FixedType
        Output format.
    attrs : Mapping
        Op attributes: every numeric choice (internal formats, unit variant objects, orders).
    params : Mapping of str to Param
        Parameters as raw integers.
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    fmt: FixedType
    attrs: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Param] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "attrs", MappingProxyType(dict(self.attrs)))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def attr(self, key: str) -> Any:
        """Return attribute ``key``; a missing one is a bug in the graph builder."""
        try:
            return self.attrs[key]
        except KeyError:
            raise KeyError(f"node {self.name!r} ({self.op}) has no attribute {key!r}") from None


@dataclass(frozen=True, eq=False)
class Graph:
    """A quantized model: topologically ordered nodes plus the input description.

    Attributes
    ----------
    name : str
        Model name (preset name or YAML stem).
    input_shape : tuple of int
        Image shape (C, H, W).
    input_fmt : FixedType
        Pixel format; float pixels in [0, 1) are quantized into it.
    nodes : tuple of Node
        Topological order; the last node is the model output unless ``outputs`` says otherwise.
    outputs : tuple of str
        Names of the output nodes (logits or features first, then any exit heads).
    model : Any
        The reference model's configuration (``vitaccel.models.ViTConfig``).
    precision : Any
        The ``vitaccel.ir.Precision`` the graph was quantized with.
    """

    name: str
    input_shape: tuple[int, ...]
    input_fmt: FixedType
    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    model: Any = None
    precision: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        seen = {INPUT}
        for node in self.nodes:
            if node.name in seen:
                raise ValueError(f"graph {self.name!r}: duplicate node name {node.name!r}")
            missing = [i for i in node.inputs if i not in seen]
            if missing:
                raise ValueError(
                    f"graph {self.name!r}: node {node.name!r} reads {missing} before they exist"
                )
            seen.add(node.name)
        unknown = [o for o in self.outputs if o not in seen]
        if unknown:
            raise ValueError(f"graph {self.name!r}: unknown outputs {unknown}")

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise UsageError(f"graph {self.name!r} has no node {name!r}")

    def spec(self, name: str) -> tuple[tuple[int, ...], FixedType]:
        """Shape and format of tensor ``name`` (a node output or ``INPUT``)."""
        if name == INPUT:
            return self.input_shape, self.input_fmt
        node = self[name]
        return node.shape, node.fmt

    def replace_nodes(self, nodes: tuple[Node, ...]) -> Graph:
        """A copy of the graph with a new node list (passes return new graphs)."""
        return Graph(self.name, self.input_shape, self.input_fmt, nodes, self.outputs,
                     self.model, self.precision)
