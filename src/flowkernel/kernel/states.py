"""The life of a step, as a table: the kernel's states and every transition between them.

The kernel moves steps only along these edges (the state-machine property test checks every run
against the table), and ``docs/design.md`` renders its state diagram from it.
"""

from __future__ import annotations

from typing import NamedTuple

from ..result import StepStatus

__all__ = (
    "BACKOFF",
    "CANCELLED",
    "FAILED",
    "FINAL_STATUS",
    "PENDING",
    "RUNNING",
    "SKIPPED",
    "STATE_NAMES",
    "SUCCEEDED",
    "TRANSITIONS",
    "Transition",
)

# Small ints on the hot path; their names below.
PENDING, RUNNING, BACKOFF, SUCCEEDED, FAILED, SKIPPED, CANCELLED = range(7)
STATE_NAMES = ("pending", "running", "backoff", "succeeded", "failed", "skipped", "cancelled")
FINAL_STATUS = {
    SUCCEEDED: StepStatus.SUCCEEDED,
    FAILED: StepStatus.FAILED,
    SKIPPED: StepStatus.SKIPPED,
    CANCELLED: StepStatus.CANCELLED,
}


class Transition(NamedTuple):
    """One edge of the step state machine: from ``source`` to ``target`` when ``event`` happens."""

    source: str
    event: str
    target: str
    commands: str
    """What the kernel yields on this edge."""


_FAILURE_ENDS = (
    ("failed", "on_error=fail (the run fails), or continue (tolerated)", "nothing; with fail_fast, Cancel all"),
    ("succeeded", "on_error=Fallback(value=...)", "Invokes of ready dependents"),
    ("running", "on_error=Fallback(tool=...)", "Invoke of the fallback tool"),
)

TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        "pending",
        "every dependency settled (join=all: all succeeded; any: one did), a slot free",
        "running",
        "Invoke (+ StartTimer for its timeout)",
    ),
    Transition("pending", "its `when` condition is false", "skipped", "nothing"),
    Transition(
        "pending", "a dependency failed or was skipped (join=all), or none succeeded (join=any)", "skipped", "nothing"
    ),
    Transition("pending", "the run stopped (StopRun, deadline, fail_fast)", "cancelled", "nothing"),
    *(
        Transition("pending", f"arguments, input model or condition fail; {when}", target, commands)
        for target, when, commands in _FAILURE_ENDS
    ),
    Transition(
        "running",
        "Returned, output fits the output model",
        "succeeded",
        "Cancel of its timeout timer; Invokes of ready dependents",
    ),
    Transition(
        "running",
        "Raised, invalid output, or its timeout fired; the retry policy allows another attempt",
        "backoff",
        "StartTimer for the backoff (Cancel of the call on a timeout)",
    ),
    *(
        Transition("running", f"Raised, invalid output or timed out, no retry left; {when}", target, commands)
        for target, when, commands in _FAILURE_ENDS
    ),
    Transition("running", "the run stopped", "running", "Cancel"),
    Transition(
        "running",
        "Cancelled (after the kernel's Cancel), or a failure it would have retried after a stop",
        "cancelled",
        "nothing",
    ),
    Transition(
        "backoff",
        "the backoff timer fired and a slot is free",
        "running",
        "Invoke of the next attempt (+ StartTimer for its timeout)",
    ),
    Transition("backoff", "the run stopped", "cancelled", "Cancel of the backoff timer"),
)
