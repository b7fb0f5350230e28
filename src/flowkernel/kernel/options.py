"""Per-run options that affect the kernel's decisions (and so belong in a journal)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ("RunOptions",)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """``max_concurrency`` bounds the invokes in flight at once (``None``: unbounded). ``deadline``
    bounds the whole run in seconds. ``fail_fast`` cancels everything on the first failure that fails
    the run: the one documented exception to the determinism contract (which steps had finished by
    then depends on timing)."""

    run_id: str
    max_concurrency: int | None = None
    deadline: float | None = None
    fail_fast: bool = False
    events: bool = False
    """Whether the run collects events (:mod:`flowkernel.events`) on ``RunState.events`` for the host."""

    def __post_init__(self) -> None:
        if not self.run_id:
            raise ValueError("run_id must be a non-empty string")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1 or None, got {self.max_concurrency}")
        if self.deadline is not None and not self.deadline > 0:
            raise ValueError(f"deadline must be a positive number of seconds or None, got {self.deadline}")
