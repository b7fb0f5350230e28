"""Per-run options that affect the kernel's decisions (and so belong in a journal)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ("RunOptions",)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """``max_concurrency`` bounds the invokes in flight at once; ``None`` means unbounded."""

    run_id: str
    max_concurrency: int | None = None

    def __post_init__(self) -> None:
        if not self.run_id:
            raise ValueError("run_id must be a non-empty string")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1 or None, got {self.max_concurrency}")
