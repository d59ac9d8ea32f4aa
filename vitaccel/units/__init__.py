"""Hardware units as bit-exact functions on raw integers.

Each unit module holds the exact integer semantics of one compute unit (linear engine,
attention, softmax, GELU, LayerNorm, ...). The nonlinear units come in variants, kept in the
registries ``SOFTMAX``, ``GELU`` and ``LAYERNORM`` of their modules; every variant names the
precision roles it reads in ``ROLES``.
"""

from __future__ import annotations

__all__ = ["unit_roles", "variant_registries"]


def variant_registries() -> dict[str, dict[str, type]]:
    """The variant registries by unit kind: ``{"softmax": SOFTMAX, "gelu": GELU, ...}``."""
    from vitaccel.units.gelu import GELU
    from vitaccel.units.layernorm import LAYERNORM
    from vitaccel.units.softmax import SOFTMAX

    return {"softmax": SOFTMAX, "gelu": GELU, "layernorm": LAYERNORM}


def unit_roles() -> dict[str, str]:
    """Every precision role read by some unit variant, with the variant that reads it."""
    roles: dict[str, str] = {}
    for kind, registry in variant_registries().items():
        for name, cls in registry.items():
            for role in cls.ROLES:
                roles.setdefault(role, f"{kind} variant {name!r}")
    return roles
