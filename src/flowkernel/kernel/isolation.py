"""Tools get their own copies of mutable argument values, so a tool that mutates an argument cannot change
another step's output behind the run's back: the live result, its replay and every driver agree.

Immutable values (numbers, strings, bytes, ``None``, frozen pydantic models) are passed as they are, at the
cost of one type check each; anything else is deep-copied per call. A value that cannot be copied (a live
client passed as an input) is passed as it is.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from pydantic import BaseModel

__all__ = ("IMMUTABLE", "isolated")

IMMUTABLE = frozenset({int, float, str, bool, type(None), bytes, complex, range})
"""Types whose values a tool cannot change: passed as they are."""


def isolated(arguments: dict[str, Any]) -> dict[str, Any]:
    """``arguments`` with every mutable value replaced by a deep copy (the same dict if there is none)."""
    for value in arguments.values():
        if type(value) not in IMMUTABLE and not _frozen(value):
            return {name: _copy(value) for name, value in arguments.items()}
    return arguments


def _frozen(value: Any) -> bool:
    return isinstance(value, BaseModel) and bool(value.model_config.get("frozen"))


def _copy(value: Any) -> Any:
    if type(value) in IMMUTABLE or _frozen(value):
        return value
    try:
        return deepcopy(value)
    except Exception:  # cannot be copied (a lock, a live client): the tool gets it as it is
        return value
