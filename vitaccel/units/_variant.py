"""Common construction of unit variants from role formats and options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, ClassVar, Self

from vitaccel.errors import UsageError
from vitaccel.fixed import FixedType

__all__ = ["Variant"]


class Variant:
    """Mixin for frozen-dataclass unit variants.

    Subclasses set ``KIND`` (``"softmax"``, ...), ``NAME`` (registry key) and ``ROLE_FIELDS``
    (precision role -> dataclass field holding that format). Every other init field is an
    option with a default. ``ROLES`` lists the roles in ``ROLE_FIELDS`` order.
    """

    KIND: ClassVar[str] = ""
    NAME: ClassVar[str] = ""
    ROLE_FIELDS: ClassVar[dict[str, str]] = {}
    ROLES: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.ROLES = tuple(cls.ROLE_FIELDS)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """Names of the options ``build`` accepts (init fields that are not formats)."""
        role_fields = set(cls.ROLE_FIELDS.values())
        return tuple(f.name for f in fields(cls) if f.init and f.name not in role_fields)

    @classmethod
    def build(cls, fmt: Callable[[str], FixedType], **options: Any) -> Self:
        """Build the variant: formats from ``fmt(role)`` for each of ``ROLES``, plus options.

        Raises
        ------
        UsageError
            On an unknown option or a role that does not map to a FixedType.
        """
        allowed = cls.option_names()
        for key in options:
            if key not in allowed:
                raise UsageError(
                    f"{cls.KIND} variant {cls.NAME!r}: unknown option {key!r} "
                    f"(expected one of: {', '.join(allowed) or 'none'})"
                )
        formats: dict[str, FixedType] = {}
        for role, name in cls.ROLE_FIELDS.items():
            t = fmt(role)
            if not isinstance(t, FixedType):
                raise UsageError(
                    f"{cls.KIND} variant {cls.NAME!r}: role {role!r} must give a FixedType, "
                    f"got {t!r}"
                )
            formats[name] = t
        return cls(**formats, **options)
