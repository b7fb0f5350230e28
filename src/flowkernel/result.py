"""Results: plain, immutable, serializable records of what a run did.

``ExecutionResult.canonical()`` drops the timing fields, and errors' tracebacks and details; by the
determinism contract what remains is a pure function of (flow, inputs, run id, the outcome of each tool
call), whatever the driver. :func:`json_ready` turns any value a tool returns into strict JSON data, the
same way every time (the canonical form and ``to_json()`` are built with it).
"""

from __future__ import annotations

import reprlib
import traceback as _traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from functools import cache
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_json, to_jsonable_python

from ._immutable import typed_equality
from .json_values import MAX_JSON_DEPTH, cut_middle, json_ready, safe_repr

__all__ = (
    "MAX_JSON_DEPTH",
    "MAX_MESSAGE_CHARS",
    "MAX_TRACEBACK_CHARS",
    "REPR_STEPS",
    "AttemptRecord",
    "AttemptStatus",
    "ErrorInfo",
    "ErrorKind",
    "ExecutionResult",
    "RunStatus",
    "StepRecord",
    "StepStatus",
    "json_ready",
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


REPR_STEPS = 10
"""An :class:`ExecutionResult` of more steps reprs them as counts by status (its repr stays small)."""

MAX_TRACEBACK_CHARS = 8_000
"""The most characters :meth:`ErrorInfo.from_exception` keeps of a traceback (the middle is cut, and says so)."""
MAX_MESSAGE_CHARS = 8_000
"""The most characters :meth:`ErrorInfo.from_exception` keeps of an exception's message."""


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A serializable description of an error: its kind, type name, message and step.

    ``traceback`` is the formatted traceback of the exception, as Python prints it (bounded to
    :data:`MAX_TRACEBACK_CHARS`), and ``details`` structured data about the error (for example a remote
    error code; see :class:`~flowkernel.errors.ToolError`). Both are diagnostics: equality ignores them
    (frames differ between drivers), and :meth:`ExecutionResult.canonical` leaves them out.
    """

    kind: ErrorKind
    type: str
    message: str
    step: str | None = None
    traceback: str | None = field(default=None, compare=False, repr=False)
    details: Mapping[str, Any] | None = field(default=None, compare=False)

    def for_step(self, step: str) -> ErrorInfo:
        """The same error, attributed to ``step``."""
        return ErrorInfo(self.kind, self.type, self.message, step, self.traceback, self.details)

    @classmethod
    def from_exception(cls, exc: BaseException, kind: ErrorKind = ErrorKind.TOOL) -> ErrorInfo:
        """Describe an exception: builtins by their name, others by ``module.QualName``.

        ``traceback`` is the exception formatted as Python prints it, with its causes, and ``details``
        the exception's ``details`` attribute when that is a mapping, copied into plain JSON data (values
        JSON cannot hold as their ``repr``), so the record always pickles (journal, Dask) and survives a
        JSON round trip. Never raises: an exception that cannot be printed gets a placeholder message,
        and the message and traceback are cut to :data:`MAX_MESSAGE_CHARS` and :data:`MAX_TRACEBACK_CHARS`.
        """
        t = type(exc)
        name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
        message = cut_middle(_message_of(exc, t.__qualname__), MAX_MESSAGE_CHARS)
        return cls(kind, name, message, None, _traceback_of(exc, name, message), _details_of(exc))

    @classmethod
    def from_validation_error(cls, kind: ErrorKind, exc: ValidationError, step: str | None = None) -> ErrorInfo:
        """Describe a pydantic validation failure on one line: ``Model: loc: msg; loc: msg``."""
        details = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        return cls(kind, "ValidationError", f"{exc.title}: {details}", step)

    def __setstate__(self, state: Sequence[Any]) -> None:
        # Records pickled before ``traceback`` and ``details`` existed (older journals) hold four values.
        names = [f.name for f in fields(self)]
        for name, value in zip(names, (*state, *(None,) * (len(names) - len(state))), strict=True):
            object.__setattr__(self, name, value)


def _message_of(exc: BaseException, type_name: str) -> str:
    try:
        return str(exc)
    except Exception as failure:
        return f"<unprintable {type_name}: __str__ raised {type(failure).__qualname__}>"


def _traceback_of(exc: BaseException, name: str, message: str) -> str:
    """``exc`` formatted as Python prints it, with its causes, bounded to :data:`MAX_TRACEBACK_CHARS`."""
    try:
        entries = _traceback.format_exception(exc)
    except Exception:  # a hostile exception (its __notes__ raise, ...): its frames and its message alone
        try:
            entries = ["Traceback (most recent call last):\n", *_traceback.format_tb(exc.__traceback__)]
        except Exception:
            entries = []
        entries.append(f"{name}: {message}\n")
    return _bounded(entries, MAX_TRACEBACK_CHARS)


def _bounded(entries: list[str], limit: int) -> str:
    """Join ``entries`` (frames, exception lines) in at most ``limit`` characters.

    Each entry is cut to a quarter of the limit (a huge message); then, if they are still too long, the
    first entries (the outermost frames or the first cause) fill up to a quarter and the last ones (the
    frames nearest the error and the exception itself) the rest, around a note of what was left out.
    """
    entries = [cut_middle(entry, limit // 4) for entry in entries]
    total = sum(map(len, entries))
    if total <= limit:
        return "".join(entries)
    note_room = 120
    head: list[str] = []
    used = 0
    for entry in entries:
        if used + len(entry) > limit // 4:
            break
        head.append(entry)
        used += len(entry)
    tail: list[str] = []
    for entry in reversed(entries[len(head) :]):
        if used + len(entry) > limit - note_room:
            break
        tail.append(entry)
        used += len(entry)
    tail.reverse()
    left_out = entries[len(head) : len(entries) - len(tail)]
    cut = sum(map(len, left_out))
    note = f"  [... {len(left_out)} traceback entries ({cut:,} characters) cut to keep it under {limit:,} ...]\n"
    return "".join((*head, note, *tail))


def _details_of(exc: BaseException) -> dict[str, Any] | None:
    """The exception's ``details`` mapping as plain JSON data; ``None`` if it has none."""
    try:
        details = getattr(exc, "details", None)
        if not isinstance(details, Mapping):
            return None
        items = list(details.items())
    except Exception:
        return None
    try:
        plain = to_jsonable_python(dict(items), fallback=safe_repr)
    except Exception:  # a cycle, keys that cannot be made strings: each value on its own
        plain = {_safe_str(key): _plain_value(value) for key, value in items}
    return plain if isinstance(plain, dict) else None


def _plain_value(value: Any) -> Any:
    try:
        return to_jsonable_python(value, fallback=safe_repr)
    except Exception:
        return safe_repr(value)


def _safe_str(value: Any) -> str:
    try:
        return value if isinstance(value, str) else cut_middle(str(value), MAX_MESSAGE_CHARS)
    except Exception:
        return safe_repr(value)


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
    cached: bool = False
    """The call's value was served from a step cache: the tool was not called. Like the timestamps, not
    in :meth:`ExecutionResult.canonical` (whether a call hits depends on what ran before, and when)."""


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


@dataclass(frozen=True, slots=True, repr=False)
class ExecutionResult:
    """The result of one run: status, final outputs, and one record per step in declaration order."""

    run_id: str
    flow_name: str
    flow_version: str
    status: RunStatus
    outputs: dict[str, Any] = field(default_factory=dict)
    steps: tuple[StepRecord, ...] = ()
    reason: str | None = None

    def __repr__(self) -> str:
        """Every field for a small run; for a large one, the steps counted by status and the outputs cut short.

        Bounded because Python reprs results it only holds: ``asyncio.run`` looks up the SIGINT handler
        on its way out (``signal.getsignal``, whose failing enum lookup formats the handler, a partial
        holding the main task), and a task's repr includes its result, so ``asyncio.run(driver.run(flow))``
        paid a full repr of every step record (a quarter of a 10,000-step async chain's run time).
        """
        if len(self.steps) <= REPR_STEPS:
            steps = repr(self.steps)
            outputs = repr(self.outputs)
        else:
            counts = Counter(step.status.value for step in self.steps)
            steps = f"<{len(self.steps):,} steps: {', '.join(f'{n} {status}' for status, n in sorted(counts.items()))}>"
            outputs = reprlib.repr(self.outputs)
        reason = "" if self.reason is None else f", reason={self.reason!r}"
        return (
            f"ExecutionResult(run_id={self.run_id!r}, flow_name={self.flow_name!r}, flow_version={self.flow_version!r}"
            f", status={self.status!r}, outputs={outputs}, steps={steps}{reason})"
        )

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
        """The result as nested dicts and lists (values left as they are).

        ``timing=False`` leaves out what differs from driver to driver: the attempts' timestamps and
        ``cached`` flags, and the errors' ``traceback`` and ``details``.
        """
        return self._data(timing, _as_it_is)

    def canonical(self) -> dict[str, Any]:
        """Strict JSON data without timing (nor errors' tracebacks and details): equal for any two runs the
        contract says are equal, whatever the tools returned (values made JSON by :func:`json_ready`)."""
        return self._data(False, json_ready)

    def to_json(self, *, indent: int | None = None) -> str:
        """Serialize as strict JSON, timing and errors' tracebacks and details included; values JSON cannot
        hold are written as :func:`json_ready` says (bytes in base64, ``"NaN"``, a ``repr``...)."""
        return to_json(self._data(True, json_ready), indent=indent).decode()

    def _data(self, timing: bool, value: Callable[[Any], Any]) -> dict[str, Any]:
        """:meth:`to_dict`, every field passed through ``value`` (the keys are plain already)."""
        return {
            "run_id": value(self.run_id),
            "flow_name": value(self.flow_name),
            "flow_version": value(self.flow_version),
            "status": value(self.status),
            "reason": value(self.reason),
            "outputs": value(self.outputs),
            "steps": [_step_dict(step, timing, value) for step in self.steps],
        }

    @classmethod
    def from_json(cls, text: str | bytes) -> ExecutionResult:
        """Read a result written by :meth:`to_json`."""
        return _adapter().validate_json(text)


def _as_it_is(value: Any) -> Any:
    return value


def _step_dict(step: StepRecord, timing: bool, value: Callable[[Any], Any]) -> dict[str, Any]:
    return {
        "id": value(step.id),
        "status": value(step.status),
        "input": value(step.input),
        "output": value(step.output),
        "error": step.error and _error_dict(step.error, timing, value),
        "attempts": [_attempt_dict(attempt, timing, value) for attempt in step.attempts],
        "reason": value(step.reason),
        "fallback": step.fallback,
        "tolerated": step.tolerated,
        "subflow": step.subflow and step.subflow._data(timing, value),
        "warnings": value(step.warnings),
    }


def _attempt_dict(attempt: AttemptRecord, timing: bool, value: Callable[[Any], Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"attempt": attempt.attempt, "status": value(attempt.status)}
    if timing:
        data["started"] = value(attempt.started)
        data["finished"] = value(attempt.finished)
        data["cached"] = attempt.cached
    data["error"] = attempt.error and _error_dict(attempt.error, timing, value)
    data["retry_in"] = value(attempt.retry_in)
    return data


def _error_dict(error: ErrorInfo, timing: bool, value: Callable[[Any], Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": value(error.kind),
        "type": value(error.type),
        "message": value(error.message),
        "step": value(error.step),
    }
    if timing:  # like timestamps, tracebacks differ between drivers: not in the canonical form
        data["traceback"] = value(error.traceback)
        data["details"] = value(error.details)
    return data


@cache
def _adapter() -> TypeAdapter[ExecutionResult]:
    return TypeAdapter(ExecutionResult)
