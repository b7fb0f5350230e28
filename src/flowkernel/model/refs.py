"""Argument sources: references to flow inputs and to earlier steps' outputs.

A step's argument is a literal, a :class:`Ref` to another step's output, or an :class:`Input`; refs may
sit anywhere inside lists and dicts. ``path`` selects into the value with a JMESPath expression
(``"items[0].name"``, ``"rows[*].id"``), the same language everywhere data is selected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult
from pydantic import BaseModel

__all__ = ("Input", "PathError", "Ref", "compile_path", "select")


@dataclass(frozen=True, slots=True)
class Ref:
    """The output of step ``step``, or the part of it that the JMESPath ``path`` selects."""

    step: str
    path: str = ""

    def __str__(self) -> str:
        return f"ref({self.step}{'.' + self.path if self.path else ''})"


@dataclass(frozen=True, slots=True)
class Input:
    """The flow input ``name``, or the part of it that the JMESPath ``path`` selects."""

    name: str
    path: str = ""

    def __str__(self) -> str:
        return f"input({self.name}{'.' + self.path if self.path else ''})"


class PathError(ValueError):
    """A JMESPath expression that does not parse, or fails when evaluated."""


def compile_path(path: str) -> ParsedResult | None:
    """Compile a JMESPath expression (``None`` for the empty path, which selects the whole value)."""
    if not path:
        return None
    try:
        return jmespath.compile(path)
    except JMESPathError as exc:
        raise PathError(f"invalid path {path!r}: {_one_line(exc)}") from None


def select(expression: ParsedResult, value: Any) -> Any:
    """Evaluate a compiled path against a value; pydantic models, at any depth, are searched as fields."""
    try:
        return expression.search(_plain(value))
    except JMESPathError as exc:
        raise PathError(f"path {expression.expression!r} failed: {_one_line(exc)}") from None


def _plain(value: Any) -> Any:
    """``value`` with every pydantic model in it turned into its fields (JMESPath sees only dicts)."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _one_line(exc: Exception) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
