"""The life of a step, as a table: the kernel's states and every transition between them.

The kernel moves steps only along these edges (the state-machine property test checks every run
against the table), and ``docs/design.md`` renders its state diagram from it.
"""

from __future__ import annotations

from typing import NamedTuple

from ..result import StepStatus

__all__ = (
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
PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED, CANCELLED = range(6)
STATE_NAMES = ("pending", "running", "succeeded", "failed", "skipped", "cancelled")
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


TRANSITIONS: tuple[Transition, ...] = (
    Transition("pending", "every dependency succeeded and a slot is free", "running", "Invoke"),
    Transition("pending", "its arguments cannot be built (a path fails)", "failed", "nothing"),
    Transition("pending", "its arguments violate the tool's input model", "failed", "nothing"),
    Transition("pending", "a dependency failed or was skipped", "skipped", "nothing"),
    Transition("pending", "the caller stopped the run (StopRun)", "cancelled", "nothing"),
    Transition("running", "Returned, and the output fits the output model", "succeeded", "Invokes of ready dependents"),
    Transition("running", "Returned, but the output violates the output model", "failed", "nothing"),
    Transition("running", "Raised", "failed", "nothing"),
    Transition("running", "the caller stopped the run (StopRun)", "running", "Cancel"),
    Transition("running", "Cancelled (after the kernel's Cancel)", "cancelled", "nothing"),
)
