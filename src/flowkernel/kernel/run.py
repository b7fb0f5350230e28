"""The kernel: a pure generator that decides what runs and records what happened.

``run_flow`` returns the generator; ``drive`` is the only place that yields (as trio's
``unrolled_run`` is): it yields a list of commands, receives a list of completions, and returns the
:class:`ExecutionResult`. All state lives in :class:`RunState`, whose methods are plain synchronous
transitions along the table in :mod:`flowkernel.kernel.states`.

Determinism: ready steps wait in a heap keyed by declaration index, so dispatch order never depends on
completion order; call ids are ``"<step>@<attempt>"``; every record is indexed by declaration position;
retry jitter comes from a hash of (run id, step, attempt). Timeouts, backoff and the run's deadline are
timers the driver runs; the kernel never reads a clock.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from functools import partial
from heapq import heappop, heappush
from itertools import compress, count
from operator import not_
from typing import Any

from jmespath.exceptions import JMESPathError
from pydantic import ValidationError

from ..errors import ProtocolError
from ..events import StepStarted
from ..model.flow import Flow
from ..model.plan import FlowPlan
from ..model.refs import PathError, is_truthy, select
from ..protocol import Cancel, Cancelled, Command, Completion, Invoke, Raised, Returned, StartTimer, StopRun
from ..result import AttemptStatus, ErrorInfo, ErrorKind, ExecutionResult, RunStatus
from .children import ChildRuns, child_call
from .inputs import prepare_inputs
from .isolation import IMMUTABLE, isolated
from .options import RunOptions
from .place import Place
from .policies import BACKOFF_TIMER, DEADLINE, DEADLINE_ID, TIMEOUT
from .states import BACKOFF, PENDING, RUNNING
from .steps import _new_attempt

__all__ = ("KernelGenerator", "RunState", "drive", "run_flow")

KernelGenerator = Generator[list[Command], Sequence[Completion], ExecutionResult]

_UNBOUNDED = 1 << 62
_SUCCEEDED_ATTEMPT = AttemptStatus.SUCCEEDED
# Named tuples built without their Python-level __new__ (the hot path builds one of each per step).
_new_invoke = partial(tuple.__new__, Invoke)
_new_started = partial(tuple.__new__, StepStarted)
if Invoke._fields != ("call_id", "step_id", "tool", "arguments", "attempt", "run_id", "cache", "timeout"):
    raise ImportError("Invoke's fields changed: update _new_invoke's call")  # pragma: no cover


def run_flow(flow: Flow, inputs: Mapping[str, Any] | None, options: RunOptions) -> KernelGenerator:
    """Execute ``flow`` as a generator of command batches; see :mod:`flowkernel.protocol`.

    Raises :class:`~flowkernel.errors.FlowInputError` at once if the inputs do not fit; the generator
    raises :class:`~flowkernel.errors.ProtocolError` if the driver breaks the protocol.
    """
    return drive(RunState(flow, prepare_inputs(flow, inputs), options))


def drive(state: RunState) -> KernelGenerator:
    """The only place the kernel yields. Events (when asked for) are not yielded: they collect on
    ``state.events``, beside the commands, for the host to take after each batch."""
    commands = state.start()
    while state._calls or state.active:  # (the property, after its commonest reason, without a call)
        completions = yield commands
        commands = state.handle(completions)
    return state.result()


class RunState(ChildRuns):
    """One run: dispatch, completions, stopping (runs inside the run: :class:`ChildRuns`); no I/O anywhere."""

    def __init__(
        self,
        flow: Flow,
        inputs: dict[str, Any],
        options: RunOptions,
        place: Place | None = None,
        plan: FlowPlan | None = None,
    ) -> None:
        super().__init__(flow, inputs, options, place, plan)
        self._limit = options.max_concurrency or _UNBOUNDED
        self._children: dict[str, tuple[int, RunState, int | None]] = {}  # step id -> (index, run, elements)
        # What handle and _dispatch read on every batch, in one tuple each: unpacking one costs a third of
        # reading each attribute. All are fixed for the run's life (the lists and dicts change in place).
        plan = self._plan
        self._handle_reads = (self._calls, self._tools, plan.timeouts, self._attempts, self._slots, self._outputs)
        self._dispatch_reads = (
            *(self._ready, self._calls, self._state, self._limit, plan.step_ids, self._tools, plan.timeouts),
            *(plan.plain, plan.caches, self.place.run_id, self._slots, plan.resolvers, self._arguments),
            self.place.calls,
        )

    @property
    def active(self) -> bool:
        """Whether any call or timer is still outstanding (so the run is not over)."""
        return bool(
            self._calls
            or self._timers
            or self._fallback_calls
            or self._ignored
            or self._children
            or (self._ready and self._stop_reason is None)  # waiting for a slot of the root's
        )

    def outstanding(self) -> list[str]:
        """The ids of every call and timer a driver still owes an answer for, children's included."""
        own = [*self._calls, *self._timers, *self._fallback_calls, *self._ignored]
        for _, child, _ in self._children.values():
            own += child.outstanding()
        return own

    def start(self) -> list[Command]:
        """The first batch: every step with no dependencies, within the limit; the deadline timer."""
        commands: list[Command] = []
        if self.options.deadline is not None:
            self._timers[DEADLINE_ID] = (DEADLINE, -1)
            commands.append(StartTimer(DEADLINE_ID, self.options.deadline))
        self._ready.extend(compress(count(), map(not_, self._waiting)))  # ascending: already a heap
        self._dispatch(commands)
        self._close_deadline(commands)
        return commands

    def handle(self, completions: Sequence[Completion]) -> list[Command]:
        """Consume a batch of completions; return the next batch of commands."""
        if not completions:
            outstanding = self.outstanding()
            raise ProtocolError(
                f"driver sent no completions while {len(outstanding)} call(s) are outstanding "
                f"({', '.join(outstanding[:5])}); a driver must wait for at least one"
            )
        commands: list[Command] = []
        child_batches: dict[str, list[Completion]] | None = None
        calls, tools, timeouts, attempts, slots, outputs = self._handle_reads
        for completion in completions:
            kind = type(completion)
            if kind is StopRun:
                self._stop(f"cancelled: {completion.reason}", RunStatus.CANCELLED, commands)  # type: ignore[union-attr]
                continue
            call_id = completion[0]  # every completion's call id (by position: a named field costs a lookup)
            i = calls.pop(call_id, -1)
            if i >= 0:
                if slots is not None:
                    slots[0] -= 1
                if kind is Returned and timeouts[i] is None:  # no timeout timer to stop: straight to the output
                    if tools[i].output_model is not None:
                        self._on_returned(i, completion, commands)  # type: ignore[arg-type]
                        continue
                    returned: Returned = completion  # type: ignore[assignment]  # (kind is Returned)
                    previous = attempts[i]  # the hot path: _on_returned without a model, inlined
                    record = (len(previous) + 1, _SUCCEEDED_ATTEMPT, returned[2], returned[3], None, None, returned[4])
                    attempts[i] = (*previous, _new_attempt(record))
                    outputs[i] = returned[1]  # Returned.value
                    self._succeed(i)
                else:
                    self._on_invoke_done(i, call_id, completion, commands)
            elif call_id in self._ignored:
                self._ignored.discard(call_id)
            elif call_id in self._timers:
                self._on_timer(call_id, completion, commands)
            elif call_id in self._fallback_calls:
                self._on_fallback_done(self._fallback_calls.pop(call_id), call_id, completion, commands)
            elif (child := child_call(call_id, self.place.calls, self._children)) is not None:
                child_batches = child_batches or {}
                child_batches.setdefault(child, []).append(completion)
            else:
                raise self._unknown_call(completion)
        if child_batches is not None:
            self._route(child_batches, commands)
        if self._stop_reason is None and self._root:  # the root dispatches for the whole tree
            if self._children:
                self._dispatch_all(commands)
            else:
                self._dispatch(commands)
            if self.options.deadline is not None:
                self._close_deadline(commands)
        return commands

    # ---- dispatch -----------------------------------------------------------------------------

    def _dispatch(self, commands: list[Command], before: int = _UNBOUNDED) -> None:
        """Start ready steps (those declared before ``before``), lowest declaration index first, while this
        run's limit and the root run's (``slots``: calls in flight in the whole tree, and the limit) allow."""
        if not self._ready:  # common in a tree of runs, where every run is asked after every batch
            return
        reads = self._dispatch_reads
        ready, calls, state, limit, ids, tools, timeouts, plain, caches, run_id, slots, resolvers, kept, prefix = reads
        immutable = IMMUTABLE
        if slots is not None:  # its own limit, and the free slots of the root's (both grow with each
            limit = min(limit, len(calls) + slots[1] - slots[0])  # dispatch here: the bound holds)
        while ready and len(calls) < limit:
            i = heappop(ready)
            if i >= before:
                heappush(ready, i)
                break
            if plain[i] and state[i] == PENDING:  # the common case: just resolve the arguments
                try:
                    arguments = kept[i] = resolvers[i](self._outputs, self.inputs)
                except PathError as exc:
                    self._give_up(i, ErrorInfo(ErrorKind.ARGUMENT, "PathError", str(exc), ids[i]), commands)
                    continue
                attempt = 1
            elif state[i] == BACKOFF:  # a retry: same arguments, next attempt
                arguments = self._arguments[i] or {}
                attempt = len(self._attempts[i]) + 1
            else:
                prepared = self._prepare(i, commands)
                if prepared is None:
                    continue
                if self._plan.map_sources[i] is not None or tools[i] is None:
                    self._start_child(i, prepared, commands)  # its calls take slots of the root's
                    assert slots is not None
                    limit = min(self._limit, len(calls) + slots[1] - slots[0])
                    continue
                arguments, attempt = prepared, 1
            step_id = prefix + ids[i]  # self._called(i), inlined
            call_id = f"{step_id}@{attempt}"
            calls[call_id] = i
            if slots is not None:
                slots[0] += 1
            state[i] = RUNNING
            given = arguments  # the tool's own copies of mutable values
            for value in arguments.values():
                if type(value) not in immutable:
                    given = isolated(arguments)
                    break
            timeout = timeouts[i]
            commands.append(_new_invoke((call_id, step_id, tools[i], given, attempt, run_id, caches[i], timeout)))
            if self._emit:
                name = tools[i].name
                self.events.append(_new_started((run_id, self._paths[i], attempt, name, call_id, arguments, 0.0)))
            if timeout is not None:
                self._timers[call_id + "/timeout"] = (TIMEOUT, i)
                commands.append(StartTimer(call_id + "/timeout", timeout))

    def _prepare(self, i: int, commands: list[Command]) -> dict[str, Any] | None:
        """A first attempt's arguments, or ``None`` if the step does not run (condition, bad arguments)."""
        step_id = self._plan.step_ids[i]
        condition = self._plan.conditions[i]
        if condition is not None:
            document = {"inputs": self.inputs, "steps": {name: self._outputs[d] for name, d in condition.reads}}
            try:
                holds = is_truthy(select(condition.expression, document))
            except (PathError, JMESPathError) as exc:
                self._give_up(i, ErrorInfo(ErrorKind.CONDITION, type(exc).__name__, str(exc), step_id), commands)
                return None
            if not holds:
                self._skip(i, f"condition {condition.text!r} is false")
                self._settle_dependents(i)
                return None
        if self._plan.reads_context[i] and not self._prepare_context(i, commands):
            return None
        try:
            arguments = self._plan.resolvers[i](self._outputs, self.inputs)
        except PathError as exc:
            self._give_up(i, ErrorInfo(ErrorKind.ARGUMENT, "PathError", str(exc), step_id), commands)
            return None
        self._arguments[i] = arguments
        tool = self._tools[i]  # a map step's elements validate their own arguments
        model = tool.input_model if tool is not None and self._plan.map_sources[i] is None else None
        if model is not None:
            try:
                validated = model.model_validate(arguments)
            except ValidationError as exc:
                self._give_up(i, ErrorInfo.from_validation_error(ErrorKind.INPUT_VALIDATION, exc, step_id), commands)
                return None
            arguments = {**validated.__dict__, **(validated.__pydantic_extra__ or {})}
            self._arguments[i] = arguments
        return arguments

    # ---- completions --------------------------------------------------------------------------

    def _on_invoke_done(self, i: int, call_id: str, completion: Completion, commands: list[Command]) -> None:
        timer = call_id + "/timeout"
        if timer in self._timers:  # the call beat its timeout: stop the timer
            del self._timers[timer]
            self._ignored.add(timer)
            commands.append(Cancel(timer))
        kind = type(completion)
        seconds = self._plan.timeouts[i]
        if seconds is not None and (kind is Returned or kind is Raised):
            started, finished = completion.started, completion.finished  # type: ignore[union-attr]
            if finished - started > seconds:  # it outlasted its timeout, whose timer could not fire first
                self._attempt_failed(i, self._timeout_error(i), started, finished, commands)  # (a blocked loop)
                return
        if kind is Returned:
            self._on_returned(i, completion, commands)  # type: ignore[arg-type]
        elif kind is Raised:
            error = completion.error.for_step(self._plan.step_ids[i])  # type: ignore[union-attr]
            self._attempt_failed(i, error, completion.started, completion.finished, commands)  # type: ignore[union-attr]
        elif kind is Cancelled and call_id in self._cancel_requested:
            self._record(i, AttemptStatus.CANCELLED, None, None, None)
            self._cancel(i)
        else:
            raise ProtocolError(f"driver answered invoke {call_id!r} with {completion!r}, which does not fit it")

    def _on_returned(self, i: int, completion: Returned, commands: list[Command]) -> None:
        model = self._tools[i].output_model
        _, value, started, finished, cached = completion  # (by position: see the hot path in handle)
        if model is not None:
            try:
                value = model.model_validate(value)
            except ValidationError as exc:
                error = ErrorInfo.from_validation_error(ErrorKind.OUTPUT_VALIDATION, exc, self._plan.step_ids[i])
                self._attempt_failed(i, error, started, finished, commands)
                return
        self._record(i, AttemptStatus.SUCCEEDED, started, finished, None, None, cached)
        self._outputs[i] = value
        self._succeed(i)

    def _stop(self, reason: str, status: RunStatus, commands: list[Command]) -> None:
        """Stop the run: cancel every call and timer outstanding; dispatch nothing more."""
        if self._stop_reason is not None:
            return
        self._stop_reason = reason
        self._stop_status = status
        self._ready.clear()
        for i, s in enumerate(self._state):
            if s in (PENDING, BACKOFF):  # they will never run; running ones end when their calls answer
                self._cancel(i)
        for call_id in [*self._calls, *self._fallback_calls, *self._timers]:
            self._cancel_requested.add(call_id)
            commands.append(Cancel(call_id))
        for step_id, (_, child, _) in list(self._children.items()):
            child_commands: list[Command] = []
            child._stop(reason, RunStatus.CANCELLED, child_commands)
            self._advance_child(step_id, child_commands, commands)
        for timer, (kind, _) in list(self._timers.items()):
            if kind != BACKOFF_TIMER:  # timeouts and the deadline no longer matter; a backoff's step is cancelled
                del self._timers[timer]
                self._ignored.add(timer)

    def _close_deadline(self, commands: list[Command]) -> None:
        """When nothing but the deadline timer is left, cancel it so the run can end."""
        others = self._calls or self._fallback_calls or self._children
        if len(self._timers) == 1 and DEADLINE_ID in self._timers and not others:
            del self._timers[DEADLINE_ID]
            self._ignored.add(DEADLINE_ID)
            commands.append(Cancel(DEADLINE_ID))
