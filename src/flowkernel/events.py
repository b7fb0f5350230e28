"""Run events: the one window into a run, built only when someone listens (``RunOptions.events``).

Every event names its run (``run_id``) and its place (``path``): the step's id, with sub-flow steps
under their step (``"report/fetch"``) and map elements as ``"each[3]"`` (``"report/each[3]"`` when
nested); run-level events have the path ``""``. ``time`` is the driver's clock when the event was
delivered; :class:`RunStarted` also carries ``wall_time``, the epoch time at the same instant, so any
event's time maps to epoch time with :func:`wall_time_of` on every driver.

The kernel builds events without time (it reads no clock); the host stamps them as it delivers them,
before it starts the calls of the same batch, so a step's start arrives before its tool runs. For a
given completion order every driver delivers the same sequence: :func:`without_timing` drops what
differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from ._immutable import typed_equality

if TYPE_CHECKING:
    from .result import ErrorInfo, ExecutionResult

__all__ = (
    "AttemptFailed",
    "Event",
    "RetryScheduled",
    "RunFinished",
    "RunStarted",
    "StepCancelled",
    "StepFinished",
    "StepSkipped",
    "StepStarted",
    "wall_time_of",
    "without_timing",
)


@typed_equality
class RunStarted(NamedTuple):
    """The first event of a run (and of a resumed run): its flow, and the anchor of its clock."""

    run_id: str
    path: str
    flow: str
    version: str
    time: float = 0.0
    wall_time: float = 0.0
    """Epoch seconds (``time.time()``) read together with ``time``: the run's wall-clock anchor."""


@typed_equality
class StepStarted(NamedTuple):
    """An attempt of the step was dispatched (``attempt`` 1 is the first) with these arguments.

    ``tool`` and ``call_id`` are ``None`` for a sub-flow or map step, whose own steps report their calls.
    """

    run_id: str
    path: str
    attempt: int
    tool: str | None
    call_id: str | None
    arguments: Mapping[str, Any] | None
    time: float = 0.0


@typed_equality
class AttemptFailed(NamedTuple):
    """An attempt failed (raised, returned invalid output, or timed out)."""

    run_id: str
    path: str
    attempt: int
    tool: str | None
    call_id: str | None
    error: ErrorInfo
    time: float = 0.0


@typed_equality
class RetryScheduled(NamedTuple):
    """Attempt ``attempt`` will start after ``delay`` seconds."""

    run_id: str
    path: str
    attempt: int
    delay: float
    time: float = 0.0


@typed_equality
class StepFinished(NamedTuple):
    """The step is done: ``succeeded`` (possibly by its fallback, then ``error`` says what failed) or
    ``failed`` with its ``error``; ``output`` is what later steps see. ``cached``: a step cache answered
    its call (the tool did not run), as its last :class:`~flowkernel.result.AttemptRecord` says."""

    run_id: str
    path: str
    status: str
    output: Any = None
    error: ErrorInfo | None = None
    fallback: bool = False
    cached: bool = False
    time: float = 0.0


@typed_equality
class StepSkipped(NamedTuple):
    """The step will not run: a dependency did not succeed, or its condition is false."""

    run_id: str
    path: str
    reason: str
    time: float = 0.0


@typed_equality
class StepCancelled(NamedTuple):
    """The run stopped before the step finished."""

    run_id: str
    path: str
    time: float = 0.0


@typed_equality
class RunFinished(NamedTuple):
    """The last event of a run: its result (partial when it was stopped)."""

    run_id: str
    path: str
    result: ExecutionResult
    time: float = 0.0


Event: TypeAlias = (
    RunStarted | StepStarted | AttemptFailed | RetryScheduled | StepFinished | StepSkipped | StepCancelled | RunFinished
)


def wall_time_of(event: Event, anchor: RunStarted) -> float:
    """The epoch time of ``event``, through its run's :class:`RunStarted` anchor."""
    return anchor.wall_time + (event.time - anchor.time)


def without_timing(event: Event) -> Event:
    """The event with what differs between drivers removed: times, a result's timing fields, and whether
    a cache answered a call (which depends on what ran before it, as in ``ExecutionResult.canonical()``)."""
    if type(event) is RunStarted:
        return event._replace(time=0.0, wall_time=0.0)
    if type(event) is RunFinished:
        return event._replace(time=0.0, result=_untimed(event.result))
    if type(event) is StepFinished:
        return event._replace(time=0.0, cached=False)
    return event._replace(time=0.0)


def _untimed(result: ExecutionResult) -> Any:
    return result.canonical()
