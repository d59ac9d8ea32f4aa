"""Shared state while one graph is rendered: identifiers, typedefs, ROMs and the weight stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vitaccel.codegen._names import TypeTable, unique_identifiers
from vitaccel.codegen._tables import RomTable, WeightPacker
from vitaccel.fixed import FixedType
from vitaccel.ir import INPUT, Graph, Node

__all__ = ["EmitContext", "dims"]


def dims(shape: tuple[int, ...]) -> str:
    """C array dimensions: ``(17, 32)`` -> ``[17][32]``."""
    return "".join(f"[{int(s)}]" for s in shape)


@dataclass
class EmitContext:
    """What the renderers share for one graph and hardware configuration.

    Attributes
    ----------
    graph : Graph
        The quantized model.
    hw : HwConfig
        Hardware configuration (tile sizes, parallelism, II, board, clock).
    ids : dict
        Node name -> C identifier.
    types : TypeTable
        Typedefs of ``types.h``.
    roms : RomTable
        ROMs of ``tables.h``.
    weights : WeightPacker
        The ``weights.bin`` layout.
    """

    graph: Graph
    hw: Any
    ids: dict[str, str] = field(default_factory=dict)
    types: TypeTable = field(default_factory=TypeTable)
    roms: RomTable = field(init=False)
    weights: WeightPacker = field(default_factory=WeightPacker)

    def __post_init__(self) -> None:
        self.roms = RomTable(self.types)
        self.ids = unique_identifiers([n.name for n in self.graph])
        self.types.add("input_t", self.graph.input_fmt, "image pixels")
        for node in self.graph:
            self.types.add(f"{self.ids[node.name]}_out_t", node.fmt, f"output of {node.name}")

    # ---------------------------------------------------------------- tensors
    def ident(self, name: str) -> str:
        """C identifier of a tensor (``input`` for the image)."""
        return "input" if name == INPUT else self.ids[name]

    def tensor_type(self, name: str) -> str:
        """Typedef of tensor ``name`` (a node output or the image)."""
        return "input_t" if name == INPUT else f"{self.ids[name]}_out_t"

    def tensor_fmt(self, name: str) -> FixedType:
        return self.graph.spec(name)[1]

    def arg(self, name: str, var: str) -> dict[str, str]:
        """Template fields of a node argument reading tensor ``name`` as ``var``."""
        shape, _ = self.graph.spec(name)
        return {"var": var, "type": self.tensor_type(name), "dims": dims(shape),
                "buffer": f"buf_{self.ident(name)}"}

    # ------------------------------------------------------------------ roles
    def typedef(self, node: Node, role: str, fmt: FixedType, what: str) -> str:
        """Register ``<node>_<role>_t`` for ``fmt``; return its name."""
        return self.types.add(f"{self.ids[node.name]}_{role}_t", fmt, f"{what} of {node.name}")

    def optional_typedef(self, node: Node, role: str, fmt: FixedType | None,
                         what: str) -> str | None:
        return None if fmt is None else self.typedef(node, role, fmt, what)

    def param(self, node: Node, key: str) -> dict[str, Any]:
        """Typedef and ``weights.bin`` placement of parameter ``key`` of ``node``."""
        p = node.params[key]
        t = self.typedef(node, key, p.fmt, f"parameter {key}")
        entry = self.weights.add(node.name, key, p)
        return {"type": t, "offset": entry["offset"], "lane": entry["lane"],
                "count": entry["count"], "dims": dims(p.shape), "shape": list(p.shape)}

    def base(self, node: Node) -> dict[str, Any]:
        """Fields every node template reads."""
        ident = self.ids[node.name]
        return {"name": node.name, "id": ident, "fn": f"k_{ident}",
                "out_t": f"{ident}_out_t", "out_dims": dims(node.shape),
                "shape": list(node.shape), "op": node.op}
