"""The step cache as call middleware: a hit answers the call without calling the tool, on every driver."""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from typing import Any

from pydantic import ValidationError

from ...errors import CacheError
from ...model.tool import IDEMPOTENCY_KEY
from ...protocol import Invoke
from ..middleware import mark_cached
from .keys import cache_key, json_value
from .store import StepCache

__all__ = ("StepCacheMiddleware", "step_cache")

log = logging.getLogger("flowkernel.cache")


class StepCacheMiddleware:
    """Serve calls that carry a cache policy (:attr:`Invoke.cache`) from ``store``, and store what
    their tools return. Calls without a policy pass through untouched.

    A hit returns the stored value before the ``yield`` (the tool is not called) and marks the attempt
    ``cached``. A miss calls the tool and stores its value when it is plain JSON data (and fits the
    tool's output model, if it has one); other values, and errors, are never stored. Nor is a value that
    took longer than the call's :attr:`~Invoke.timeout`: the run counted that call as timed out (a sync
    tool in a thread, or a task on a Dask worker, cannot be stopped and may still return). Arguments that are
    not JSON data fail the call with :class:`~flowkernel.errors.CacheKeyError`. A cache file that cannot
    be read fails the call (a :class:`~flowkernel.errors.CacheError`); one that cannot be written is
    logged, and the call keeps the value its tool returned.
    """

    def __init__(self, store: StepCache) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"step_cache({self.store!r})"

    def __call__(self, call: Invoke) -> Generator[Invoke, Any, Any]:
        policy = call.cache
        if policy is None:
            return (yield call)
        arguments = call.arguments
        if call.tool.idempotency_key and IDEMPOTENCY_KEY in arguments:  # unique to the run: not part of the key
            arguments = {name: value for name, value in arguments.items() if name != IDEMPOTENCY_KEY}
        key = cache_key(call.tool.name, policy.version, arguments, where=f"step {call.step_id!r}: arguments")
        hit = self.store.get(key)
        if hit is not None:
            mark_cached()
            return hit.value
        started = time.monotonic()
        value = yield call
        timeout = call.timeout
        if timeout is not None and time.monotonic() - started > timeout:
            log.info("step %s: %s returned after its timeout (%g s): not cached", call.step_id, call.tool.name, timeout)
            return value
        text = json_value(value)
        if text is None:
            kind = type(value).__name__
            log.info("step %s: %s returned a %s, not plain JSON data: not cached", call.step_id, call.tool.name, kind)
        elif _fits_output(call, value):
            try:
                self.store.put(key, text, policy.ttl)
            except CacheError as exc:
                log.warning("step %s: its result could not be cached: %s", call.step_id, exc)
        return value


def _fits_output(call: Invoke, value: Any) -> bool:
    """Whether the kernel will accept ``value`` (an invalid output fails the attempt: never cached)."""
    model = call.tool.output_model
    if model is None:
        return True
    try:
        model.model_validate(value)
    except ValidationError:
        return False
    return True


def step_cache(store: StepCache) -> StepCacheMiddleware:
    """The middleware serving cached calls from ``store``: ``middleware=[..., step_cache(store)]``, where
    it sits decides which other middleware a hit passes through. ``cache=store`` puts it innermost."""
    return StepCacheMiddleware(store)
