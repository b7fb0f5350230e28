"""Support for the immutable named-tuple records used on hot paths (messages, step records)."""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ("typed_equality",)

T = TypeVar("T", bound=tuple[Any, ...])


def typed_equality(cls: type[T]) -> type[T]:
    """Make equality and hashing include the type: plain named tuples equal any tuple of their values."""

    def __eq__(self: tuple[Any, ...], other: object) -> bool:
        return type(self) is type(other) and tuple.__eq__(self, other)

    def __ne__(self: tuple[Any, ...], other: object) -> bool:
        return not __eq__(self, other)

    def __hash__(self: tuple[Any, ...]) -> int:
        return hash((type(self).__name__, tuple.__hash__(self)))

    cls.__eq__ = __eq__  # type: ignore[method-assign]
    cls.__ne__ = __ne__  # type: ignore[assignment,method-assign]
    cls.__hash__ = __hash__  # type: ignore[method-assign]
    return cls
