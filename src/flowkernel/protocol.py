"""The kernel protocol: commands (kernel to driver) and completions (driver to kernel).

The loop: ``commands = kernel.send(completions)``. A driver starts every command it receives, waits
until at least one call completes, sends every completion it has, and repeats until ``StopIteration``
carries the :class:`~flowkernel.result.ExecutionResult`. Every command names a ``call_id`` derived
from the step and attempt (``"fetch@1"``), so ids do not depend on timing; every completion names the
call it completes, and each call gets exactly one.

Messages are immutable named tuples (cheap to build on the hot path) whose equality also compares the
message type, so ``Returned(...)`` never equals a ``Raised(...)`` with the same fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from ._immutable import typed_equality

if TYPE_CHECKING:
    from .model.cache import CachePolicy
    from .model.tool import Tool
    from .result import ErrorInfo

__all__ = (
    "Cancel",
    "Cancelled",
    "Command",
    "Completion",
    "Invoke",
    "Raised",
    "Returned",
    "StartTimer",
    "StopRun",
    "TimerFired",
)

# ---- commands: kernel to driver -------------------------------------------------------------------


@typed_equality
class Invoke(NamedTuple):
    """Call ``tool`` with ``arguments`` (already validated against its input model, if any), for the
    run ``run_id`` (the root run's id, for calls inside sub-flows and map steps too). ``cache`` is the
    step's cache policy in force: a run's step cache may answer the call instead of the tool.
    ``timeout`` is the step's timeout in seconds, if it has one: the kernel times the call with its own
    timer; middleware and tools may read it (the step cache stores nothing that took longer, and a tool
    can bound its own I/O by it)."""

    call_id: str
    step_id: str
    tool: Tool
    arguments: Mapping[str, Any]
    attempt: int
    run_id: str = ""
    cache: CachePolicy | None = None
    timeout: float | None = None


@typed_equality
class StartTimer(NamedTuple):
    """Complete ``call_id`` with :class:`TimerFired` after ``seconds`` on the driver's clock."""

    call_id: str
    seconds: float


@typed_equality
class Cancel(NamedTuple):
    """Cancel an in-flight invoke or timer; the driver still completes it exactly once."""

    call_id: str


Command: TypeAlias = Invoke | StartTimer | Cancel


# ---- completions: driver to kernel ----------------------------------------------------------------


@typed_equality
class Returned(NamedTuple):
    """The tool returned ``value``; ``started``/``finished`` come from the driver's clock. ``cached``:
    the value was served from a step cache, without calling the tool."""

    call_id: str
    value: Any
    started: float
    finished: float
    cached: bool = False


@typed_equality
class Raised(NamedTuple):
    """The tool raised; ``error`` is its serializable description."""

    call_id: str
    error: ErrorInfo
    started: float
    finished: float


@typed_equality
class TimerFired(NamedTuple):
    """The timer ``call_id`` ran out."""

    call_id: str


@typed_equality
class Cancelled(NamedTuple):
    """The invoke or timer ``call_id`` was cancelled before it completed."""

    call_id: str


@typed_equality
class StopRun(NamedTuple):
    """Not a call's completion: the caller cancelled the run (Ctrl-C, task or scope cancellation).

    The kernel answers with a :class:`Cancel` for every call in flight, dispatches nothing new, and
    returns a partial result with status ``cancelled`` once every call is completed.
    """

    reason: str


Completion: TypeAlias = Returned | Raised | TimerFired | Cancelled | StopRun
