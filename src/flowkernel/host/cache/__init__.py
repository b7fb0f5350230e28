"""The step cache: results of idempotent, expensive tools reused across runs (``cache=StepCache(path)``).

A tool or step opts in with a :class:`~flowkernel.model.CachePolicy`; a run given a cache answers their
calls from it through the call middleware, so every driver serves them alike. See ``docs/cache.md``.
"""

from __future__ import annotations

from .keys import CacheKey, cache_key, canonical_json, json_value
from .middleware import StepCacheMiddleware, step_cache
from .store import CacheHit, CacheStats, StepCache, ToolStats

__all__ = (
    "CacheHit",
    "CacheKey",
    "CacheStats",
    "StepCache",
    "StepCacheMiddleware",
    "ToolStats",
    "cache_key",
    "canonical_json",
    "json_value",
    "step_cache",
)
