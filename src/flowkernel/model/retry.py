"""Retry policies: how often to try a failing call again, and how long to wait in between."""

from __future__ import annotations

import hashlib

from pydantic import ConfigDict, Field

from .checked import MAX_SECONDS, CheckedModel

__all__ = ("RetryPolicy", "jitter_unit")


class RetryPolicy(CheckedModel):
    """Retry a failing call up to ``max_attempts`` times in all, waiting between attempts.

    The wait before attempt n+1 is ``min(max_delay, initial_delay * multiplier ** (n - 1))``, spread by
    ``jitter`` (a fraction: 0.2 means up to 20 % shorter or longer). The spread is not random: it comes
    from a hash of (run id, step, attempt), so every driver, and every replay, waits the same.
    ``retry_on`` names the error types worth retrying (``"ConnectionError"``, ``"httpx.ReadTimeout"``;
    empty means every error the tool raised or returned invalid output for); a timed-out attempt is
    retried when ``retry_on_timeout`` is set. Input-validation and condition errors are never retried.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    _kind = "retry policy"

    max_attempts: int = Field(default=3, ge=1)
    initial_delay: float = Field(default=0.1, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    multiplier: float = Field(default=2.0, ge=1, allow_inf_nan=False)
    max_delay: float = Field(default=30.0, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    jitter: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)
    retry_on: tuple[str, ...] = ()
    retry_on_timeout: bool = True

    def delay(self, attempt: int, unit: float) -> float:
        """Seconds to wait after failed attempt ``attempt``; ``unit`` in [0, 1) places the jitter."""
        if self.initial_delay == 0:
            return 0.0
        try:
            base = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        except OverflowError:  # far past the cap
            base = self.max_delay
        return min(self.max_delay, base * (1 + self.jitter * (2 * unit - 1)))

    def retries_type(self, error_type: str) -> bool:
        """Whether an error of this type (``module.Name`` or a builtin's name) is worth retrying."""
        if not self.retry_on:
            return True
        return any(error_type == name or error_type.endswith("." + name) for name in self.retry_on)


def jitter_unit(run_id: str, step: str, attempt: int) -> float:
    """A number in [0, 1) fixed by (run id, step, attempt): the deterministic source of retry jitter."""
    digest = hashlib.blake2b(f"{run_id}\x00{step}\x00{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
