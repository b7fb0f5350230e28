"""The journal interface: what a store must keep for a run to be resumed, and the records it keeps.

A run's journal is its header (flow identity, inputs, the options that affect decisions) followed by
entries, one per batch of completions in arrival order, each written before the kernel consumes it.
Replaying the entries into a fresh kernel reproduces the run: that is the determinism contract at work.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from ...protocol import Completion
from ...result import ExecutionResult

__all__ = ("Entry", "Journal", "RecordedRun", "RunHeader", "RunSummary")


@dataclass(frozen=True, slots=True)
class RunHeader:
    """What a run started from: the flow's identity and structure hash, its inputs, and the options
    that affect the kernel's decisions (the run id seeds retry jitter)."""

    run_id: str
    flow_name: str
    flow_version: str
    flow_hash: str
    inputs: Mapping[str, Any]
    max_concurrency: int | None = None
    deadline: float | None = None
    fail_fast: bool = False
    flow_source: str | None = None
    """Where the flow can be loaded from again (``path.py:flow``), when the caller said."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One batch of completions, and the digest of the commands the kernel issued just before it
    (what replay checks the kernel issues again)."""

    seq: int
    issued: tuple[str, ...]
    completions: tuple[Completion, ...]


@dataclass(frozen=True, slots=True)
class RecordedRun:
    """A run as its journal holds it. ``status`` is the status a finished run ended with (``None`` until
    it finishes); the result itself is not stored: replaying the entries gives it back, exactly."""

    header: RunHeader
    entries: tuple[Entry, ...]
    status: str | None


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One line of ``flowkernel runs``. ``status`` is the run's, or ``incomplete`` (crashed, interrupted
    or still running: resumable). ``steps_done`` counts succeeded steps (of an incomplete run: at least)."""

    run_id: str
    flow_name: str
    flow_version: str
    status: str
    started: datetime
    finished: datetime | None
    steps_done: int
    entries: int


class Journal(ABC):
    """An append-only store of runs. Implementations must make ``append`` durable before returning
    (to the degree their durability setting promises) and must not copy a run's state per entry."""

    @abstractmethod
    def begin(self, header: RunHeader) -> None:
        """Record a new run; :class:`~flowkernel.errors.RunExistsError` if its id is taken."""

    @abstractmethod
    def append(self, run_id: str, entry: Entry, steps_done: int) -> None:
        """Record one batch of completions (``steps_done``: steps succeeded before it, for listings)."""

    @abstractmethod
    def finish(self, run_id: str, result: ExecutionResult) -> None:
        """Mark the run finished, with its result's status and steps done (for listings); the result is
        not stored, since replay derives it from the entries (so finishing costs the same at any length)."""

    @abstractmethod
    def load(self, run_id: str) -> RecordedRun:
        """Everything recorded for a run, checked whole; raises rather than return part of it."""

    @abstractmethod
    def runs(self) -> list[RunSummary]:
        """Every run, oldest first."""

    def allow(self, classes: Iterable[Any]) -> None:  # noqa: B027 - optional for stores
        """Let the store keep values of these classes (pydantic models, enums); called with the models a
        flow declares before its run is recorded or read. Stores that keep any value ignore it."""

    def acquire(self, run_id: str) -> None:  # noqa: B027 - optional for stores
        """Lease the run for this store's holder before resuming it, so no other process executes it at the
        same time; :class:`~flowkernel.host.journal.RunLeasedError` if a live holder has it. ``begin``
        leases a new run. Stores that are not shared between processes need not lease."""

    def release(self, run_id: str) -> None:  # noqa: B027 - optional for stores
        """Give up the run's lease (the run ended, however it ended)."""

    def delete(self, run_id: str) -> None:
        """Delete the run and its record, so its id can be used again."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete runs")

    def header(self, run_id: str) -> RunHeader:
        """A run's header alone. ``flowkernel resume`` and ``show`` read it to find the flow before importing
        the flow's module, which the entries' values may need; stores can override it to skip the entries."""
        return self.load(run_id).header

    @abstractmethod
    def close(self) -> None:
        """Release the store's resources."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
