"""Facts every run of a flow needs that depend on the flow alone, computed on its first run and kept
with it: a flow is immutable (frozen, its steps and tools too), so a second run of it skips the walk.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar
from weakref import ref

from ..model.flow import Flow

__all__ = ("per_flow",)

T = TypeVar("T")


def per_flow(fact: Callable[[Flow], T]) -> Callable[[Flow], T]:
    """``fact(flow)``, computed once per flow object and kept until the flow is gone (an exception is
    raised again on the next call: only values are kept).

    Kept by ``id(flow)`` beside a weak reference that checks it is the same flow (an id is reused once
    its object is gone): a lookup is then C-level dict and weakref calls only, where a
    ``WeakKeyDictionary`` would call ``Flow.__hash__`` and its own ``__getitem__`` in Python.
    """
    kept: dict[int, tuple[ref[Flow], T]] = {}

    @wraps(fact)
    def known(flow: Flow) -> T:
        key = id(flow)
        entry = kept.get(key)
        if entry is not None and entry[0]() is flow:
            return entry[1]
        value = fact(flow)

        def forget(gone: ref[Flow]) -> None:
            if kept.get(key, (None,))[0] is gone:  # not a newer flow's entry under the reused id
                del kept[key]

        kept[key] = (ref(flow, forget), value)
        return value

    return known
