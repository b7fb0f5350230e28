"""Cache policies: which calls' results a run may take from a step cache instead of calling the tool."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from .checked import CheckedModel

__all__ = ("MAX_TTL", "CachePolicy")

MAX_TTL = 100 * 365 * 24 * 3600.0
"""The longest time-to-live accepted, in seconds (a hundred years); ``None`` means no expiry."""


class CachePolicy(CheckedModel):
    """Reuse the results of an idempotent, expensive tool across runs (see :mod:`flowkernel.host.cache`).

    A result is found again by the tool's name, ``version`` and the call's arguments as canonical JSON;
    change ``version`` when the tool's behaviour changes, so older results are no longer served. A result
    is served for ``ttl`` seconds after it was stored (``None``: until the cache is cleared). Only calls
    that return are stored; errors never are. A run uses a cache only when given one (``cache=``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    _kind = "cache policy"

    version: str = "1"
    ttl: float | None = Field(default=None, gt=0, le=MAX_TTL, allow_inf_nan=False)
