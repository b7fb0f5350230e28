"""The calls and timers a run has outstanding, and what the steps' policies make of them: retries with
backoff, timeouts, the deadline, error policies and fallbacks, and the accumulated context."""

from __future__ import annotations

from heapq import heappush
from operator import attrgetter
from typing import Any, cast

from pydantic import ValidationError

from ..errors import ProtocolError
from ..events import AttemptFailed, RetryScheduled
from ..model.flow import Flow
from ..model.plan import FlowPlan
from ..model.policies import Fallback
from ..model.retry import jitter_unit
from ..model.tool import Tool
from ..protocol import Cancel, Cancelled, Command, Completion, Invoke, Raised, Returned, StartTimer, TimerFired
from ..result import AttemptStatus, ErrorInfo, ErrorKind, RunStatus
from .context import merge_context
from .isolation import isolated
from .options import RunOptions
from .place import Place
from .states import BACKOFF, RUNNING, SUCCEEDED
from .steps import StepTable

__all__ = ("DEADLINE", "DEADLINE_ID", "TIMEOUT", "PolicyTable")

# Timer kinds.
TIMEOUT, BACKOFF_TIMER, DEADLINE = range(3)
DEADLINE_ID = "@deadline"
_RETRYABLE_KINDS = (ErrorKind.TOOL, ErrorKind.OUTPUT_VALIDATION)
_TOOL = attrgetter("tool")


class PolicyTable(StepTable):
    """Calls and timers outstanding; failures, timers and fallbacks, settled by the step's policies."""

    def __init__(
        self,
        flow: Flow,
        inputs: dict[str, Any],
        options: RunOptions,
        place: Place | None = None,
        plan: FlowPlan | None = None,
    ) -> None:
        super().__init__(flow, inputs, options, place, plan)
        tools = cast(list[Tool], [*map(_TOOL, self._plan.steps)])  # None for sub-flow steps: never invoked
        self._tools = tools
        self._calls: dict[str, int] = {}  # invokes in flight -> step index (these count against the limit)
        self._fallback_calls: dict[str, int] = {}  # fallback tools in flight -> step index
        self._timers: dict[str, tuple[int, int]] = {}  # timers running -> (kind, step index)
        self._ignored: set[str] = set()  # cancelled calls and timers whose answer no longer matters
        self._cancel_requested: set[str] = set()
        # A root without sub-runs counts its calls by itself (len(_calls)). Every plain step calls a tool:
        # no walk then, and never ``None in tools``, which compares each pydantic tool with ``None``.
        sources, plan = self._plan.map_sources, self._plan
        nested = place is not None or (
            not all(plan.plain) and (any(tool is None for tool in tools) or len(sources) != sources.count(None))
        )
        self._slots: list[int] | None = self.place.slots if nested else None
        """The root's count of calls in flight and its limit, shared by a tree of runs (see ``Place``)."""

    def _stop(self, reason: str, status: RunStatus, commands: list[Command]) -> None:
        """Stop the run: cancel everything outstanding (the run state knows all of it)."""
        raise NotImplementedError

    def _on_timer(self, call_id: str, completion: Completion, commands: list[Command]) -> None:
        timer_kind, i = self._timers.pop(call_id)
        if type(completion) is Cancelled and call_id in self._cancel_requested:
            return  # the stop cancelled it; a step waiting for its backoff is cancelled in result()
        if type(completion) is not TimerFired:
            raise ProtocolError(f"driver answered timer {call_id!r} with {completion!r}, which does not fit it")
        if timer_kind == DEADLINE:
            self._stop(f"deadline of {self.options.deadline:g} s exceeded", RunStatus.TIMED_OUT, commands)
        elif timer_kind == BACKOFF_TIMER:
            if self._stop_reason is None:  # fired as the run stopped: the step was cancelled by the stop
                heappush(self._ready, i)
        else:  # a timeout: abandon the call, then treat the attempt as failed
            invoke_id = call_id.removesuffix("/timeout")
            del self._calls[invoke_id]
            if self._slots is not None:
                self._slots[0] -= 1
            self._ignored.add(invoke_id)
            commands.append(Cancel(invoke_id))
            self._attempt_failed(i, self._timeout_error(i), None, None, commands)

    def _timeout_error(self, i: int) -> ErrorInfo:
        """The error of step ``i``'s current attempt running past its timeout."""
        attempt = len(self._attempts[i]) + 1
        message = f"attempt {attempt} timed out after {self._plan.timeouts[i]:g} s"
        return ErrorInfo(ErrorKind.TIMEOUT, "TimeoutError", message, self._plan.step_ids[i])

    def _on_fallback_done(self, i: int, call_id: str, completion: Completion, commands: list[Command]) -> None:
        policy = self._plan.on_error[i]
        assert isinstance(policy, Fallback)
        assert policy.tool is not None
        kind = type(completion)
        if kind is Returned:
            value = completion.value  # type: ignore[union-attr]
            model = policy.tool.output_model
            try:
                self._outputs[i] = value if model is None else model.model_validate(value)
            except ValidationError as exc:
                error = ErrorInfo.from_validation_error(ErrorKind.OUTPUT_VALIDATION, exc, self._plan.step_ids[i])
                self._fail_the_run(i, error, commands)
                return
            self._succeed(i)
        elif kind is Raised:
            self._fail_the_run(i, completion.error.for_step(self._plan.step_ids[i]), commands)  # type: ignore[union-attr]
        elif kind is Cancelled and call_id in self._cancel_requested:
            self._cancel(i)
        else:
            raise ProtocolError(f"driver answered fallback {call_id!r} with {completion!r}, which does not fit it")

    # ---- failures and policies ----------------------------------------------------------------

    def _attempt_failed(
        self, i: int, error: ErrorInfo, started: float | None, finished: float | None, commands: list[Command]
    ) -> None:
        """Record a failed attempt; retry it if the policy allows, else give the step up."""
        policy = self._plan.retry[i]
        attempt = len(self._attempts[i]) + 1
        if self._emit:
            call_id = f"{self._called(i)}@{attempt}"
            self.events.append(
                AttemptFailed(self.place.run_id, self._paths[i], attempt, self._tools[i].name, call_id, error)
            )
        retryable = policy is not None and attempt < policy.max_attempts
        if retryable and policy is not None:
            if error.kind == ErrorKind.TIMEOUT:
                retryable = policy.retry_on_timeout
            else:
                retryable = error.kind in _RETRYABLE_KINDS and policy.retries_type(error.type)
        if not retryable or policy is None:
            self._record(i, AttemptStatus.FAILED, started, finished, error)
            self._give_up(i, error, commands)
            return
        if self._stop_reason is not None:  # it would have been retried: the stop cut it short
            self._record(i, AttemptStatus.FAILED, started, finished, error)
            self._cancel(i)
            return
        step_id = self._plan.step_ids[i]
        delay = policy.delay(attempt, jitter_unit(self.options.run_id, step_id, attempt))
        self._record(i, AttemptStatus.FAILED, started, finished, error, delay)
        self._state[i] = BACKOFF
        if self._emit:
            self.events.append(RetryScheduled(self.place.run_id, self._paths[i], attempt + 1, delay))
        if delay > 0:
            timer = f"{self._called(i)}@{attempt}/backoff"
            self._timers[timer] = (BACKOFF_TIMER, i)
            commands.append(StartTimer(timer, delay))
        else:
            heappush(self._ready, i)

    def _give_up(self, i: int, error: ErrorInfo, commands: list[Command]) -> None:
        """The step failed for good: apply its error policy."""
        policy = self._plan.on_error[i]
        if policy == "fail":
            self._fail_the_run(i, error, commands)
        elif policy == "continue":
            self._tolerated[i] = True
            self._fail(i, error)
        else:
            assert isinstance(policy, Fallback)
            if policy.tool is not None and self._stop_reason is not None:  # too late to call anything
                self._fail_the_run(i, error, commands)
                return
            self._errors[i] = error
            self._fallback[i] = True
            if policy.tool is None:
                self._outputs[i] = policy.value
                self._succeed(i)
                return
            step_id = self._plan.step_ids[i]
            arguments = self._arguments[i] or {}
            model = policy.tool.input_model
            if model is not None:
                try:
                    validated = model.model_validate(arguments)
                except ValidationError as exc:
                    invalid = ErrorInfo.from_validation_error(ErrorKind.INPUT_VALIDATION, exc, step_id)
                    self._fail_the_run(i, invalid, commands)
                    return
                arguments = {**validated.__dict__, **(validated.__pydantic_extra__ or {})}
            called = self._called(i)
            call_id = f"{called}@fallback"
            self._fallback_calls[call_id] = i
            self._state[i] = RUNNING
            run_id, cache = self.place.run_id, policy.tool.cache
            commands.append(Invoke(call_id, called, policy.tool, isolated(arguments), 1, run_id, cache))

    def _called(self, i: int) -> str:
        """Step ``i``'s id as its calls carry it: under its parent steps' ids in a run inside a run
        (``"enrich/fetch"``), so a parent passes them out unchanged (``_dispatch`` inlines this)."""
        return self.place.calls + self._plan.step_ids[i]

    def _fail_the_run(self, i: int, error: ErrorInfo, commands: list[Command]) -> None:
        """A failure that fails the run; with ``fail_fast`` it stops everything else too."""
        self._fail(i, error)
        if self.options.fail_fast:
            self._stop(f"stopped after step {self._plan.step_ids[i]!r} failed (fail_fast)", RunStatus.FAILED, commands)

    def _unknown_call(self, completion: Completion) -> ProtocolError:
        call_id = getattr(completion, "call_id", "")
        step_id, _, attempt = call_id.removeprefix(self.place.calls).rpartition("@")
        i = self._plan.step_ids.index(step_id) if step_id in self._plan.step_ids else -1  # rare: no index per run
        if i >= 0 and attempt.isdigit() and int(attempt) <= len(self._attempts[i]):
            return ProtocolError(f"driver completed call {call_id!r} twice (second time: {completion!r})")
        return ProtocolError(f"driver sent {completion!r} for call {call_id!r}, which the kernel never issued")

    def _prepare_context(self, i: int, commands: list[Command]) -> bool:
        """Merge step ``i``'s context into the outputs' extra slot; ``False`` if that failed the step.

        The context holds the steps that reach ``i`` through steps that all succeeded: each of those ran
        after everything it depends on had settled, so the set is final now (an ancestor behind a
        skipped step may still be running: it is not part of the context, on any driver).
        """
        policy = self.flow.context
        assert policy is not None
        step_id, state, step_ids, deps = self._plan.step_ids[i], self._state, self._plan.step_ids, self._plan.deps
        sources: set[int] = set()
        todo = [d for d in deps[i] if state[d] == SUCCEEDED]
        while todo:
            d = todo.pop()
            if d not in sources:
                sources.add(d)
                todo.extend(x for x in deps[d] if state[x] == SUCCEEDED)
        given = [(step_ids[d], self._outputs[d]) for d in sorted(sources)]
        merged, warnings, collision = merge_context(given, policy.collision)
        if collision is not None:
            self._give_up(i, ErrorInfo(ErrorKind.CONTEXT, "ContextCollision", collision, step_id), commands)
            return False
        if policy.model is not None:
            try:
                policy.model.model_validate(merged)
            except ValidationError as exc:
                self._give_up(i, ErrorInfo.from_validation_error(ErrorKind.CONTEXT, exc, step_id), commands)
                return False
        self._warnings[i] = tuple(warnings)
        self._outputs[len(step_ids)] = merged
        return True
