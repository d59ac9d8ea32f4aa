"""C identifiers for nodes and the typedef table of ``types.h``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vitaccel.fixed import FixedType

__all__ = ["c_identifier", "unique_identifiers", "TypeTable", "rom_code_type"]

_CPP_KEYWORDS = frozenset(
    "alignas alignof and asm auto bitand bitor bool break case catch char class compl const "
    "constexpr continue default delete do double else enum explicit export extern false float "
    "for friend goto if inline int long mutable namespace new noexcept not nullptr operator or "
    "private protected public register return short signed sizeof static struct switch "
    "template this throw true try typedef typeid typename union unsigned using virtual void "
    "volatile while xor main".split()
)


def c_identifier(name: str) -> str:
    """A C identifier from a layer name: ``blocks.3.attn.qkv`` -> ``blocks_3_attn_qkv``.

    Characters outside ``[A-Za-z0-9_]`` become ``_``; a leading digit, a C++ keyword or a
    reserved spelling (leading underscore) gets the prefix ``n_``.
    """
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    ident = re.sub(r"_+", "_", ident)
    if not ident or ident[0].isdigit() or ident[0] == "_" or ident in _CPP_KEYWORDS:
        ident = "n_" + ident.lstrip("_")
    return ident


def unique_identifiers(names: list[str]) -> dict[str, str]:
    """``c_identifier`` for every name, with ``_2``, ``_3``, ... appended on collisions."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = c_identifier(name)
        ident, k = base, 1
        while ident in used:
            k += 1
            ident = f"{base}_{k}"
        used.add(ident)
        out[name] = ident
    return out


@dataclass
class TypeTable:
    """Ordered typedefs for ``types.h``: one name per tensor role of every node."""

    entries: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, name: str, fmt: FixedType | str, comment: str = "") -> str:
        """Register ``typedef <fmt> <name>;`` and return ``name``.

        ``fmt`` is a FixedType (spelled by ``FixedType.c_type``) or a C++ type spelling.
        """
        spelling = fmt.c_type if isinstance(fmt, FixedType) else fmt
        old = self.entries.get(name)
        if old is not None and old[0] != spelling:
            raise ValueError(f"typedef {name} registered twice with {old[0]} and {spelling}")
        self.entries[name] = (spelling, comment)
        return name

    def rows(self) -> list[dict[str, str]]:
        """Rows for the template: name, spelling, comment."""
        return [{"name": n, "spelling": s, "comment": c} for n, (s, c) in self.entries.items()]


def rom_code_type(fmt: FixedType) -> str:
    """Integer type holding the raw codes of a ROM in ``fmt``."""
    return f"ap_int<{fmt.width}>" if fmt.signed else f"ap_uint<{fmt.width}>"
