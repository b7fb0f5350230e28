"""The per-step half of a run's state: where each step is in its life, and the result it adds up to.

Arrays indexed by declaration position (never by completion order), the transitions of
:mod:`flowkernel.kernel.states` that touch them, and the :class:`ExecutionResult` built from them.
"""

from __future__ import annotations

from functools import partial
from heapq import heappush
from typing import Any

from ..events import StepCancelled, StepFinished, StepSkipped
from ..model.flow import Flow
from ..model.plan import FlowPlan
from ..model.refs import PathError
from ..result import AttemptRecord, AttemptStatus, ErrorInfo, ExecutionResult, RunStatus, StepRecord
from .options import RunOptions
from .place import Place
from .states import BACKOFF, CANCELLED, FAILED, FINAL_STATUS, PENDING, RUNNING, SKIPPED, SUCCEEDED

__all__ = ("StepTable",)

_NOT_RUN_WORDS = {FAILED: "failed", SKIPPED: "was skipped", CANCELLED: "was cancelled"}
# Records built from all their fields, without their Python-level __new__ (one or two per step); a
# field added to either must be given here too, which the check below makes loud.
_new_step_record = partial(tuple.__new__, StepRecord)
_new_attempt = partial(tuple.__new__, AttemptRecord)
if len(AttemptRecord._fields) != 7 or len(StepRecord._fields) != 11:  # pragma: no cover
    raise ImportError("AttemptRecord or StepRecord changed: give every field where the kernel builds them")
_new_finished = partial(tuple.__new__, StepFinished)


class StepTable:
    """Every step's state, outputs, arguments, errors and attempts; transitions that settle steps."""

    def __init__(
        self,
        flow: Flow,
        inputs: dict[str, Any],
        options: RunOptions,
        place: Place | None = None,
        plan: FlowPlan | None = None,
    ) -> None:
        """Run ``flow`` (its name, version and policies) by ``plan``: the flow's own, unless given (a map
        step's elements: ``flow`` is the element flow, ``plan`` its expansion to every element)."""
        plan = plan or flow.plan
        n = len(plan.step_ids)
        self.flow = flow
        self.inputs = inputs
        self.options = options
        self._plan = plan
        self._state = [PENDING] * n
        self._waiting = [*map(len, plan.deps)]
        self._outputs: list[Any] = [None] * (n + 1)  # the extra slot: the context of the step being prepared
        self._arguments: list[dict[str, Any] | None] = [None] * n  # as the tool received them
        self._errors: list[ErrorInfo | None] = [None] * n
        self._attempts: list[tuple[AttemptRecord, ...]] = [()] * n
        self._reasons: list[str | None] = [None] * n
        self._fallback = [False] * n
        self._tolerated = [False] * n
        self._subflows: list[ExecutionResult | None] = [None] * n
        self._warnings: list[tuple[str, ...]] = [()] * n
        self._ready: list[int] = []
        self.succeeded = 0
        """How many steps have succeeded so far (journal listings show it)."""
        self._stop_reason: str | None = None
        self._stop_status = RunStatus.CANCELLED
        self._emit = options.events
        self.place = place or Place(options.run_id, [], "", "", slots=[0, options.max_concurrency or 1 << 62])
        self._root = place is None
        """Where this run sits: the root run's id, the event list it shares, its place and call ids."""
        self.events = self.place.events
        """Events emitted since the host last took them (only with ``options.events``)."""
        self._paths: list[str] = self.place.paths(plan.step_ids) if self._emit else []

    @property
    def stopped_by_failure(self) -> bool:
        """Whether the run was stopped by a failure under ``fail_fast``."""
        return self._stop_reason is not None and self._stop_status == RunStatus.FAILED

    def _record(
        self,
        i: int,
        status: AttemptStatus,
        started: float | None,
        finished: float | None,
        error: ErrorInfo | None,
        retry_in: float | None = None,
        cached: bool = False,
    ) -> None:
        previous = self._attempts[i]
        record = _new_attempt((len(previous) + 1, status, started, finished, error, retry_in, cached))
        self._attempts[i] = (*previous, record)

    def _succeed(self, i: int) -> None:
        """Step ``i`` succeeded: whatever waited only for it becomes ready."""
        self._state[i] = SUCCEEDED
        self.succeeded += 1
        if self._emit:
            fallback, attempts = self._fallback[i], self._attempts[i]
            error = self._errors[i] if fallback else None
            cached = not fallback and bool(attempts) and attempts[-1].cached
            self.events.append(
                _new_finished(
                    (self.place.run_id, self._paths[i], "succeeded", self._outputs[i], error, fallback, cached, 0.0)
                )
            )
        waiting, state, ready = self._waiting, self._state, self._ready
        for d in self._plan.dependents[i]:
            waiting[d] -= 1
            if not waiting[d] and state[d] == PENDING:
                heappush(ready, d)

    def _fail(self, i: int, error: ErrorInfo) -> None:
        self._state[i] = FAILED
        self._errors[i] = error
        if self._emit:
            self.events.append(
                StepFinished(self.place.run_id, self._paths[i], "failed", None, error, self._fallback[i])
            )
        self._settle_dependents(i)

    def _skip(self, i: int, reason: str | None, cause: str = "") -> None:
        """Skip step ``i``. Only a condition's ``reason`` is recorded: a dependency's is derived at the end,
        in declaration order, since which failure arrives first (``cause``, for the event) is timing."""
        self._state[i] = SKIPPED
        self._reasons[i] = reason
        if self._emit:
            self.events.append(StepSkipped(self.place.run_id, self._paths[i], reason or cause))

    def _cancel(self, i: int) -> None:
        self._state[i] = CANCELLED
        if self._emit:
            self.events.append(StepCancelled(self.place.run_id, self._paths[i]))

    def _settle_dependents(self, i: int) -> None:
        """Step ``i`` ended without succeeding: skip what needs it; a ``join="any"`` step runs if another
        of its dependencies succeeded. Independent branches are untouched."""
        state, waiting, plan = self._state, self._waiting, self._plan
        stack = [i]
        while stack:
            cause = stack.pop()
            word = _NOT_RUN_WORDS[state[cause]]
            for d in plan.dependents[cause]:
                if state[d] != PENDING:
                    continue
                if plan.join_any[d]:
                    waiting[d] -= 1
                    if waiting[d]:
                        continue
                    if any(state[x] == SUCCEEDED for x in plan.deps[d]):
                        heappush(self._ready, d)
                        continue
                self._skip(d, None, f"dependency {plan.step_ids[cause]!r} {word}")
                stack.append(d)

    # ---- the result ---------------------------------------------------------------------------

    def result(self) -> ExecutionResult:
        """The result, once nothing is outstanding; unfinished steps are skipped or cancelled."""
        plan, state = self._plan, self._state
        stopped = self._stop_reason is not None
        for i, s in enumerate(state) if min(state, default=SUCCEEDED) < SUCCEEDED else ():  # (ends are 3 up)
            if s == PENDING:  # never became ready: everything it waits for ended without it
                state[i] = SKIPPED
            elif s in (BACKOFF, RUNNING):  # defensive: a stop cancels these, and the run waits for the rest
                state[i] = CANCELLED
        reasons = self._reasons
        if max(state, default=PENDING) >= SKIPPED:  # only steps that did not run may lack a reason
            reasons = [reason or self._reason_not_run(i) for i, reason in enumerate(reasons)]
        records = map(  # one record per step, field by field from the columns, with no Python-level loop
            _new_step_record,
            zip(
                plan.step_ids,
                map(FINAL_STATUS.__getitem__, state),
                self._arguments,
                self._outputs,  # (its extra slot, the context, has no step: zip stops before it)
                self._errors,
                self._attempts,
                reasons,
                self._fallback,
                self._tolerated,
                self._subflows,
                self._warnings,
                strict=False,  # the outputs' extra slot
            ),
        )
        if stopped:
            status = self._stop_status
        elif FAILED in state and any(s == FAILED and not self._tolerated[i] for i, s in enumerate(state)):
            status = RunStatus.FAILED
        else:
            status = RunStatus.SUCCEEDED
        outputs = {}
        for name, i, getter in plan.outputs:
            if state[i] == SUCCEEDED:
                if getter is None:
                    outputs[name] = self._outputs[i]
                    continue
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
            self._stop_reason,
        )

    def _reason_not_run(self, i: int) -> str | None:
        """Why step ``i`` never ran: the first dependency, in declaration order, that did not succeed."""
        if self._state[i] < SKIPPED or self._attempts[i]:
            return None
        for d in self._plan.deps[i]:
            s = self._state[d]
            if s != SUCCEEDED:
                return f"dependency {self._plan.step_ids[d]!r} {_NOT_RUN_WORDS[s]}"
        return f"the run stopped ({self._stop_reason})"
