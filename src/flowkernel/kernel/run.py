"""The kernel: a pure generator that decides what runs and records what happened.

``run_flow`` is the only place that yields (as trio's ``unrolled_run`` is): it yields a list of
commands, receives a list of completions, and returns the :class:`ExecutionResult`. All state lives in
:class:`RunState`, whose methods are plain synchronous transitions, easy to drive from a test.

Determinism: ready steps wait in a heap keyed by declaration index, so dispatch order never depends on
completion order; call ids are ``"<step>@<attempt>"``; every record is indexed by declaration position.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from functools import partial
from heapq import heappop, heappush
from typing import Any

from pydantic import ValidationError

from ..errors import ProtocolError
from ..model.flow import Flow
from ..model.refs import PathError
from ..protocol import Cancel, Cancelled, Command, Completion, Invoke, Raised, Returned, StopRun
from ..result import (
    AttemptRecord,
    AttemptStatus,
    ErrorInfo,
    ErrorKind,
    ExecutionResult,
    RunStatus,
    StepRecord,
)
from .inputs import prepare_inputs
from .options import RunOptions
from .states import CANCELLED, FAILED, FINAL_STATUS, PENDING, RUNNING, SKIPPED, SUCCEEDED

__all__ = ("RunState", "run_flow")

KernelGenerator = Generator[list[Command], Sequence[Completion], ExecutionResult]

_NOT_RUN_WORDS = {FAILED: "failed", SKIPPED: "was skipped", CANCELLED: "was cancelled"}
_UNBOUNDED = 1 << 62
# Named tuples built without their Python-level __new__ (the hot path builds one of each per step).
_new_invoke = partial(tuple.__new__, Invoke)
_new_attempt = partial(tuple.__new__, AttemptRecord)
_new_step_record = partial(tuple.__new__, StepRecord)
_SUCCEEDED_ATTEMPT = AttemptStatus.SUCCEEDED


def run_flow(flow: Flow, inputs: Mapping[str, Any] | None, options: RunOptions) -> KernelGenerator:
    """Execute ``flow`` as a generator of command batches; see :mod:`flowkernel.protocol`.

    Raises :class:`~flowkernel.errors.FlowInputError` at once if the inputs do not fit; the generator
    raises :class:`~flowkernel.errors.ProtocolError` if the driver breaks the protocol.
    """
    return _drive(RunState(flow, prepare_inputs(flow, inputs), options))


def _drive(state: RunState) -> KernelGenerator:
    """The only place the kernel yields."""
    commands = state.start()
    while state.active:
        completions = yield commands
        commands = state.handle(completions)
    return state.result()


class RunState:
    """The mutable state of one run; every transition is a method, none of them does I/O."""

    def __init__(self, flow: Flow, inputs: dict[str, Any], options: RunOptions) -> None:
        plan = flow.plan
        n = len(plan.step_ids)
        self.flow = flow
        self.inputs = inputs
        self.options = options
        self._plan = plan
        self._tools = [step.tool for step in flow.steps]
        self._index = {step_id: i for i, step_id in enumerate(plan.step_ids)}
        self._limit = options.max_concurrency or _UNBOUNDED
        self._state = [PENDING] * n
        self._waiting = [len(d) for d in plan.deps]
        self._outputs: list[Any] = [None] * n
        self._arguments: list[dict[str, Any] | None] = [None] * n
        self._errors: list[ErrorInfo | None] = [None] * n
        self._attempts: list[tuple[AttemptRecord, ...]] = [()] * n
        self._ready: list[int] = []
        self._calls: dict[str, int] = {}  # call id -> step index, for invokes in flight
        self._cancel_requested: set[str] = set()
        self._stop_reason: str | None = None

    @property
    def active(self) -> bool:
        """Whether calls are still in flight (so the run is not over)."""
        return bool(self._calls)

    @property
    def in_flight(self) -> int:
        """How many invokes are in flight."""
        return len(self._calls)

    def start(self) -> list[Command]:
        """The first batch: every step with no dependencies, within the concurrency limit."""
        for i, remaining in enumerate(self._waiting):
            if remaining == 0:
                heappush(self._ready, i)
        commands: list[Command] = []
        self._dispatch(commands)
        return commands

    def handle(self, completions: Sequence[Completion]) -> list[Command]:
        """Consume a batch of completions; return the next batch of commands."""
        if not completions:
            raise ProtocolError(
                f"driver sent no completions while {len(self._calls)} call(s) are in flight "
                f"({', '.join(list(self._calls)[:5])}); a driver must wait for at least one"
            )
        commands: list[Command] = []
        calls, tools, outputs, attempts = self._calls, self._tools, self._outputs, self._attempts
        for completion in completions:
            kind = type(completion)
            if kind is StopRun:
                commands.extend(self._stop(completion.reason))  # type: ignore[union-attr]
                continue
            call_id = completion.call_id  # type: ignore[union-attr]
            i = calls.pop(call_id, -1)
            if i < 0:
                raise self._unknown_call(completion)
            if kind is Returned and tools[i].output_model is None:  # the hot path, kept inline
                previous = attempts[i]
                attempts[i] = (
                    *previous,
                    _new_attempt(
                        (len(previous) + 1, _SUCCEEDED_ATTEMPT, completion.started, completion.finished, None)  # type: ignore[union-attr]
                    ),
                )
                outputs[i] = completion.value  # type: ignore[union-attr]
                self._succeed(i)
            elif kind is Returned:
                self._on_validated_return(i, completion)  # type: ignore[arg-type]
            elif kind is Raised:
                error = completion.error.for_step(self._plan.step_ids[i])  # type: ignore[union-attr]
                self._record(i, AttemptStatus.FAILED, completion, error)  # type: ignore[arg-type]
                self._fail(i, error)
            elif kind is Cancelled and call_id in self._cancel_requested:
                previous = attempts[i]
                attempts[i] = (*previous, AttemptRecord(len(previous) + 1, AttemptStatus.CANCELLED))
                self._state[i] = CANCELLED
            else:
                raise ProtocolError(f"driver answered invoke {call_id!r} with {completion!r}, which does not fit it")
        if self._stop_reason is None:
            self._dispatch(commands)
        return commands

    # ---- transitions --------------------------------------------------------------------------

    def _dispatch(self, commands: list[Command]) -> None:
        """Start ready steps, lowest declaration index first, while the limit allows."""
        ready, calls, state, limit = self._ready, self._calls, self._state, self._limit
        step_ids, tools, resolvers, outputs = self._plan.step_ids, self._tools, self._plan.resolvers, self._outputs
        while ready and len(calls) < limit:
            i = heappop(ready)
            try:
                arguments = resolvers[i](outputs, self.inputs)
            except PathError as exc:
                self._fail(i, ErrorInfo(ErrorKind.ARGUMENT, "PathError", str(exc), step_ids[i]))
                continue
            self._arguments[i] = arguments
            model = tools[i].input_model
            if model is not None:
                try:
                    validated = model.model_validate(arguments)
                    arguments = {**validated.__dict__, **(validated.__pydantic_extra__ or {})}
                except ValidationError as exc:
                    self._fail(i, ErrorInfo.from_validation_error(ErrorKind.INPUT_VALIDATION, exc, step_ids[i]))
                    continue
                self._arguments[i] = arguments
            step_id = step_ids[i]
            call_id = step_id + "@1"
            calls[call_id] = i
            state[i] = RUNNING
            commands.append(_new_invoke((call_id, step_id, tools[i], arguments, 1)))

    def _on_validated_return(self, i: int, completion: Returned) -> None:
        """A return from a tool with an output model: validate before accepting it."""
        try:
            value = self._tools[i].output_model.model_validate(completion.value)  # type: ignore[union-attr]
        except ValidationError as exc:
            error = ErrorInfo.from_validation_error(ErrorKind.OUTPUT_VALIDATION, exc, self._plan.step_ids[i])
            self._record(i, AttemptStatus.FAILED, completion, error)
            self._fail(i, error)
            return
        self._record(i, AttemptStatus.SUCCEEDED, completion, None)
        self._outputs[i] = value
        self._succeed(i)

    def _succeed(self, i: int) -> None:
        """Step ``i`` succeeded: whatever waited only for it becomes ready."""
        self._state[i] = SUCCEEDED
        waiting, state, ready = self._waiting, self._state, self._ready
        for d in self._plan.dependents[i]:
            waiting[d] -= 1
            if not waiting[d] and state[d] == PENDING:
                heappush(ready, d)

    def _record(self, i: int, status: AttemptStatus, completion: Returned | Raised, error: ErrorInfo | None) -> None:
        attempts = self._attempts[i]
        self._attempts[i] = (
            *attempts,
            AttemptRecord(len(attempts) + 1, status, completion.started, completion.finished, error),
        )

    def _fail(self, i: int, error: ErrorInfo) -> None:
        """Fail step ``i`` and prune what depends on it; independent branches run on."""
        self._state[i] = FAILED
        self._errors[i] = error
        self._prune(i)

    def _prune(self, i: int) -> None:
        state = self._state
        stack = list(self._plan.dependents[i])
        while stack:
            d = stack.pop()
            if state[d] == PENDING:
                state[d] = SKIPPED
                stack.extend(self._plan.dependents[d])

    def _stop(self, reason: str) -> list[Command]:
        if self._stop_reason is not None:
            return []
        self._stop_reason = reason
        self._ready.clear()
        cancels = [call_id for call_id in self._calls if call_id not in self._cancel_requested]
        self._cancel_requested.update(cancels)
        return [Cancel(call_id) for call_id in cancels]

    def _unknown_call(self, completion: Completion) -> ProtocolError:
        call_id = getattr(completion, "call_id", "")
        step_id, _, attempt = call_id.rpartition("@")
        i = self._index.get(step_id, -1)
        if i >= 0 and attempt.isdigit() and int(attempt) <= len(self._attempts[i]):
            return ProtocolError(f"driver completed call {call_id!r} twice (second time: {completion!r})")
        return ProtocolError(f"driver sent {completion!r} for call {call_id!r}, which the kernel never issued")

    # ---- the result ---------------------------------------------------------------------------

    def result(self) -> ExecutionResult:
        """The result, once no call is in flight; unfinished steps are skipped or cancelled."""
        plan, state = self._plan, self._state
        stopped = self._stop_reason is not None
        for i, s in enumerate(state):
            if s == PENDING:
                state[i] = CANCELLED if stopped else SKIPPED
        records = [
            _new_step_record(
                (
                    step_id,
                    FINAL_STATUS[state[i]],
                    self._arguments[i],
                    self._outputs[i],
                    self._errors[i],
                    self._attempts[i],
                    self._reason_not_run(i, stopped) if state[i] > FAILED and not self._attempts[i] else None,
                )
            )
            for i, step_id in enumerate(plan.step_ids)
        ]
        if stopped:
            status = RunStatus.CANCELLED
        elif FAILED in state:
            status = RunStatus.FAILED
        else:
            status = RunStatus.SUCCEEDED
        outputs = {}
        for name, i, getter in plan.outputs:
            if state[i] == SUCCEEDED:
                try:
                    outputs[name] = getter(self._outputs, self.inputs)
                except PathError:
                    continue
        return ExecutionResult(
            self.options.run_id,
            self.flow.name,
            self.flow.version,
            status,
            outputs,
            tuple(records),
            f"cancelled: {self._stop_reason}" if stopped else None,
        )

    def _reason_not_run(self, i: int, stopped: bool) -> str:
        """Why step ``i`` never ran: the first dependency, in declaration order, that did not succeed."""
        for d in self._plan.deps[i]:
            s = self._state[d]
            if s != SUCCEEDED:
                return f"dependency {self._plan.step_ids[d]!r} {_NOT_RUN_WORDS[s]}"
        return f"run cancelled: {self._stop_reason}" if stopped else "not run"
