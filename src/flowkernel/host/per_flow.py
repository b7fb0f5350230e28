"""Facts every run of a flow needs that depend on the flow alone, computed on its first run and kept
with it: a flow is immutable (frozen, its steps and tools too), so a second run of it skips the walk.

Kept in a ``WeakKeyDictionary`` (a ``Flow`` hashes by identity): the fact goes when its flow does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar
from weakref import WeakKeyDictionary

from ..model.flow import Flow

__all__ = ("per_flow",)

T = TypeVar("T")


def per_flow(fact: Callable[[Flow], T]) -> Callable[[Flow], T]:
    """``fact(flow)``, computed once per flow object (an exception is raised again on the next call:
    only values are kept)."""
    kept: WeakKeyDictionary[Flow, T] = WeakKeyDictionary()

    @wraps(fact)
    def known(flow: Flow) -> T:
        try:
            return kept[flow]
        except KeyError:
            value = kept[flow] = fact(flow)
            return value

    return known
