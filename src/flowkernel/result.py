"""Results: plain, immutable, serializable records of what a run did.

``ExecutionResult.canonical()`` drops the timing fields; by the determinism contract what remains is a
pure function of (flow, inputs, run id, the outcome of each tool call), whatever the driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_json, to_jsonable_python

from ._immutable import typed_equality

__all__ = (
    "AttemptRecord",
    "AttemptStatus",
    "ErrorInfo",
    "ErrorKind",
    "ExecutionResult",
    "RunStatus",
    "StepRecord",
    "StepStatus",
)


class RunStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    """The run's deadline passed; calls in flight were cancelled."""


class StepStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class AttemptStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ErrorKind(StrEnum):
    """Where an error came from."""

    TOOL = "tool"
    """The tool raised."""
    INPUT_VALIDATION = "input_validation"
    """The step's arguments did not fit the tool's input model; the tool was not called."""
    OUTPUT_VALIDATION = "output_validation"
    """The tool's return value did not fit its output model."""
    ARGUMENT = "argument"
    """Building the step's arguments failed (a path that could not be evaluated)."""
    DRIVER = "driver"
    """The driver could not run the tool (for example an asyncio-only tool on trio)."""
    TIMEOUT = "timeout"
    """The attempt ran past the step's timeout and was cancelled."""
    CONDITION = "condition"
    """The step's ``when`` condition could not be evaluated."""
    CONTEXT = "context"
    """The accumulated context had a collision (policy ``error``) or did not fit its model."""
    SUBFLOW = "subflow"
    """A sub-flow (or a map step's elements) ended without succeeding, and without an error of its own."""


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A serializable description of an error: its kind, type name, message and step."""

    kind: ErrorKind
    type: str
    message: str
    step: str | None = None

    def for_step(self, step: str) -> ErrorInfo:
        """The same error, attributed to ``step``."""
        return ErrorInfo(self.kind, self.type, self.message, step)

    @classmethod
    def from_exception(cls, exc: BaseException, kind: ErrorKind = ErrorKind.TOOL) -> ErrorInfo:
        """Describe an exception: builtins by their name, others by ``module.QualName``."""
        t = type(exc)
        name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
        return cls(kind, name, str(exc))

    @classmethod
    def from_validation_error(cls, kind: ErrorKind, exc: ValidationError, step: str | None = None) -> ErrorInfo:
        """Describe a pydantic validation failure on one line: ``Model: loc: msg; loc: msg``."""
        details = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        return cls(kind, "ValidationError", f"{exc.title}: {details}", step)


@typed_equality
class AttemptRecord(NamedTuple):
    """One call of a step's tool; ``started``/``finished`` come from the driver's clock."""

    attempt: int
    status: AttemptStatus
    started: float | None = None
    finished: float | None = None
    error: ErrorInfo | None = None
    retry_in: float | None = None
    """Seconds the kernel waited before the next attempt (deterministic, jitter included)."""


@typed_equality
class StepRecord(NamedTuple):
    """What happened to one step: status, the arguments it got, its output or error, every attempt.

    ``reason`` says why a step was skipped or cancelled (``"dependency 'fetch' failed"``).
    A failed step whose error policy is ``continue`` is ``tolerated``: it does not fail the run.
    """

    id: str
    status: StepStatus
    input: dict[str, Any] | None = None
    output: Any = None
    error: ErrorInfo | None = None
    attempts: tuple[AttemptRecord, ...] = ()
    reason: str | None = None
    fallback: bool = False
    """The output is the step's fallback (its ``error`` says what failed)."""
    tolerated: bool = False
    """The step failed, but its error policy (``continue``) keeps the run from failing."""
    subflow: ExecutionResult | None = None
    """For a sub-flow or map step: the nested run's own result."""
    warnings: tuple[str, ...] = ()
    """Context keys one step's output replaced in another's, under the ``warn`` collision policy."""


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """The result of one run: status, final outputs, and one record per step in declaration order."""

    run_id: str
    flow_name: str
    flow_version: str
    status: RunStatus
    outputs: dict[str, Any] = field(default_factory=dict)
    steps: tuple[StepRecord, ...] = ()
    reason: str | None = None

    @property
    def errors(self) -> tuple[ErrorInfo, ...]:
        """The errors of failed steps, in declaration order."""
        return tuple(s.error for s in self.steps if s.status is StepStatus.FAILED and s.error is not None)

    def step(self, step_id: str) -> StepRecord:
        """The record of one step."""
        for record in self.steps:
            if record.id == step_id:
                return record
        raise KeyError(step_id)

    def to_dict(self, *, timing: bool = True) -> dict[str, Any]:
        """The result as nested dicts and lists (values left as they are)."""
        return {
            "run_id": self.run_id,
            "flow_name": self.flow_name,
            "flow_version": self.flow_version,
            "status": self.status,
            "reason": self.reason,
            "outputs": self.outputs,
            "steps": [_step_dict(step, timing) for step in self.steps],
        }

    def canonical(self) -> dict[str, Any]:
        """JSON-compatible form without timing: equal for any two runs the contract says are equal."""
        return to_jsonable_python(self.to_dict(timing=False), fallback=repr)  # type: ignore[no-any-return]

    def to_json(self, *, indent: int | None = None) -> str:
        """Serialize, timing included; values JSON cannot hold are written as their ``repr``."""
        return to_json(self.to_dict(), indent=indent, fallback=repr).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> ExecutionResult:
        """Read a result written by :meth:`to_json`."""
        return _adapter().validate_json(text)


def _step_dict(step: StepRecord, timing: bool) -> dict[str, Any]:
    data = step._asdict()
    data["error"] = step.error and _error_dict(step.error)
    data["attempts"] = [_attempt_dict(attempt, timing) for attempt in step.attempts]
    data["subflow"] = step.subflow and step.subflow.to_dict(timing=timing)
    return data


def _attempt_dict(attempt: AttemptRecord, timing: bool) -> dict[str, Any]:
    data = attempt._asdict()
    data["error"] = attempt.error and _error_dict(attempt.error)
    if not timing:
        del data["started"], data["finished"]
    return data


def _error_dict(error: ErrorInfo) -> dict[str, Any]:
    return {"kind": error.kind, "type": error.type, "message": error.message, "step": error.step}


@cache
def _adapter() -> TypeAdapter[ExecutionResult]:
    return TypeAdapter(ExecutionResult)
