"""Progress events: what the kernel reports as a run unfolds, when asked to (``RunOptions.events``).

One event model for every driver: the kernel emits these among its commands, and drivers hand them to
``on_event`` callbacks and event streams. Their order follows completion order, so unlike the result
it may differ between drivers; each event is immutable and carries plain data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from ._immutable import typed_equality

if TYPE_CHECKING:
    from .result import ErrorInfo, ExecutionResult

__all__ = (
    "AttemptFailed",
    "Event",
    "RetryScheduled",
    "RunFinished",
    "StepCancelled",
    "StepFinished",
    "StepSkipped",
    "StepStarted",
)


@typed_equality
class StepStarted(NamedTuple):
    """An attempt of the step was dispatched (``attempt`` 1 is the first)."""

    step_id: str
    attempt: int


@typed_equality
class AttemptFailed(NamedTuple):
    """An attempt failed (raised, returned invalid output, or timed out)."""

    step_id: str
    attempt: int
    error: ErrorInfo


@typed_equality
class RetryScheduled(NamedTuple):
    """Attempt ``attempt`` will start after ``delay`` seconds."""

    step_id: str
    attempt: int
    delay: float


@typed_equality
class StepFinished(NamedTuple):
    """The step is done: ``succeeded`` (possibly by its fallback) or ``failed``."""

    step_id: str
    status: str
    fallback: bool = False


@typed_equality
class StepSkipped(NamedTuple):
    """The step will not run: a dependency did not succeed, or its condition is false."""

    step_id: str
    reason: str


@typed_equality
class StepCancelled(NamedTuple):
    """The run stopped before the step finished."""

    step_id: str


@typed_equality
class RunFinished(NamedTuple):
    """The last event of a stream: the run's result (partial when it was stopped)."""

    result: ExecutionResult


Event: TypeAlias = (
    StepStarted | AttemptFailed | RetryScheduled | StepFinished | StepSkipped | StepCancelled | RunFinished
)
