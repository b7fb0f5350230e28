"""A state machine drives the kernel directly, choosing which outstanding calls and timers complete, in
which order and in which batches, and checks the protocol's invariants at every step and the oracle at
the end. Timers fire whenever the machine likes, except that a timeout fires only on a call scripted to
hang (the oracle's premise: other calls beat their timeouts)."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from flowkernel import (
    Cancel,
    Cancelled,
    Command,
    Completion,
    ExecutionResult,
    Invoke,
    Returned,
    RunOptions,
    StartTimer,
    StopRun,
    TimerFired,
    run_flow,
)
from flowkernel.host import raised
from flowkernel.kernel.states import TRANSITIONS
from flowkernel.testing import Scenario, ScriptedFailure, oracle_result, scenarios


class KernelMachine(RuleBasedStateMachine):
    """Plays an adversarial driver against the kernel."""

    @initialize(scenario=scenarios(max_steps=15), limit=st.sampled_from([1, 2, 3, None]))
    def start(self, scenario: Scenario, limit: int | None) -> None:
        self.scenario = scenario
        plan = scenario.flow.plan
        self.limit = limit
        self.deps = {
            step.id: {plan.step_ids[d] for d in deps} for step, deps in zip(scenario.flow.steps, plan.deps, strict=True)
        }
        self.kernel = run_flow(scenario.flow, scenario.inputs, RunOptions(scenario.run_id, limit))
        self.invokes: dict[str, Invoke] = {}
        self.timers: dict[str, StartTimer] = {}
        self.counted: set[str] = set()  # invokes that count against the limit
        self.own_limits = {step.id: step.max_concurrency for step in scenario.flow.steps if step.max_concurrency}
        self.issued: set[str] = set()
        self.invoked: set[str] = set()  # top-level steps with a call issued
        self.cancel_sent: set[str] = set()
        self.completed_before_stop: set[str] = set()
        self.stopped = False
        self.result: ExecutionResult | None = None
        self._send(None)

    # ---- the driver's side --------------------------------------------------------------------

    def _busy_steps(self) -> set[str]:
        busy = {c.step_id.split("/")[0] for c in self.invokes.values()}
        busy |= {t.call_id.split("/")[0].partition("@")[0] for t in self.timers.values() if "backoff" in t.call_id}
        return busy

    def _absorb(self, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, Cancel):
                known = command.call_id in self.invokes or command.call_id in self.timers
                assert known, f"cancel of {command.call_id}, which is not outstanding"
                if not self.stopped:  # a timeout fired (cancel the call) or a call beat its timeout
                    assert command.call_id.endswith("/timeout") or f"{command.call_id}/timeout" not in self.timers
                self.cancel_sent.add(command.call_id)
                self.counted.discard(command.call_id)
                continue
            assert not self.stopped or isinstance(command, Cancel), f"{command!r} after the run was stopped"
            assert command.call_id not in self.issued, f"call id {command.call_id} issued twice"
            self.issued.add(command.call_id)
            if isinstance(command, StartTimer):
                self.timers[command.call_id] = command
                continue
            assert isinstance(command, Invoke), f"unexpected command {command!r}"
            top = command.step_id.split("/")[0]
            if top not in self.invoked:
                busy = self.deps[top] & self._busy_steps()
                assert not busy, f"{top} dispatched while its dependencies {busy} are still running"
            self.invoked.add(top)
            self.invokes[command.call_id] = command
            if not command.call_id.endswith("@fallback"):
                self.counted.add(command.call_id)  # every call of the run, sub-runs' included (not fallbacks)

    def _script_key(self, invoke: Invoke) -> tuple[str, int]:
        return invoke.tool.name.removeprefix("scripted_"), invoke.attempt

    def _hangs(self, invoke: Invoke) -> bool:
        return self._script_key(invoke) in self.scenario.script.hangs and f"{invoke.call_id}/timeout" in self.timers

    def _completable(self) -> list[str]:
        ready = [c for c, i in self.invokes.items() if c in self.cancel_sent or not self._hangs(i)]
        for call_id in self.timers:
            if call_id.endswith("/timeout") and call_id not in self.cancel_sent:
                invoke = self.invokes.get(call_id.removesuffix("/timeout"))
                if invoke is None or not self._hangs(invoke):
                    continue
            ready.append(call_id)
        return sorted(ready)

    def _answer(self, call_id: str, cancel: bool) -> Completion:
        if call_id in self.timers:
            del self.timers[call_id]
            return Cancelled(call_id) if cancel and call_id in self.cancel_sent else TimerFired(call_id)
        invoke = self.invokes.pop(call_id)
        self.counted.discard(call_id)
        if call_id in self.cancel_sent and (cancel or self._hangs(invoke)):
            return Cancelled(call_id)
        if not self.stopped:
            self.completed_before_stop.add(invoke.step_id)
        step, attempt = self._script_key(invoke)
        try:
            value: Any = self.scenario.script.outcome(step, attempt, invoke.arguments)
        except ScriptedFailure as failure:  # what the tool raises, recorded as a driver records it
            exc = self.scenario.script.raised_by_tool(failure, step, attempt, is_async=invoke.tool.is_async)
            return raised(invoke, exc, 0.0, lambda: 1.0)
        return Returned(call_id, value, 0.0, 1.0)

    def _send(self, batch: list[Completion] | None) -> None:
        try:
            commands = self.kernel.send(batch)  # type: ignore[arg-type]
        except StopIteration as stop:
            self.result = stop.value
            assert self.result is not None, "the kernel generator had already ended"
            assert not self.invokes, f"kernel finished with calls outstanding: {sorted(self.invokes)}"
            assert not self.timers, f"kernel finished with timers outstanding: {sorted(self.timers)}"
            return
        self._absorb(commands)
        assert self.invokes or self.timers, "kernel waits for completions with nothing outstanding"

    # ---- rules --------------------------------------------------------------------------------

    @precondition(lambda self: self.result is None)
    @rule(data=st.data())
    def complete_some(self, data: st.DataObject) -> None:
        """Complete a non-empty subset of what may complete now, in an adversarial order, as one batch."""
        choices = self._completable()
        chosen = data.draw(st.lists(st.sampled_from(choices), min_size=1, unique=True))
        self._send([self._answer(call_id, data.draw(st.booleans())) for call_id in chosen])

    @precondition(lambda self: self.result is None and not self.stopped)
    @rule(dice=st.integers(0, 5))
    def caller_cancels(self, dice: int) -> None:
        """Now and then the caller stops the run: everything outstanding is cancelled, nothing new starts."""
        if dice:
            return
        self.stopped = True
        outstanding = set(self.invokes) | set(self.timers)
        self._send([StopRun("test")])
        assert outstanding <= self.cancel_sent

    @precondition(lambda self: self.result is not None)
    @rule()
    def finished_run_matches_the_oracle(self) -> None:
        self._check_result()

    @invariant()
    def concurrency_limit_respected(self) -> None:
        """The run's limit bounds every call in flight, sub-runs' included; a step's own limit its own."""
        if getattr(self, "limit", None) is not None:
            assert len(self.counted) <= self.limit
        for step_id, own in getattr(self, "own_limits", {}).items():
            assert sum(call.startswith(f"{step_id}/") for call in self.counted) <= own, step_id

    def _check_transitions(self, result: ExecutionResult) -> None:
        """Every step moved only along the documented state table."""
        allowed = {(t.source, t.target) for t in TRANSITIONS}
        for record in result.steps:
            retried = len(record.attempts) > 1
            started = record.id in self.invoked or record.subflow is not None
            middle = ["running", "backoff", "running"] if retried else ["running"] if started else []
            path = ["pending", *middle, str(record.status)]
            for edge in itertools.pairwise(path):
                assert edge in allowed, f"{record.id} moved {edge[0]} -> {edge[1]}, which the state table lacks"

    def _check_result(self) -> None:
        assert self.result is not None
        self._check_transitions(self.result)
        expected = oracle_result(self.scenario)
        got = self.result.canonical()
        if not self.stopped:
            assert got == expected
            return
        assert got["status"] == "cancelled"
        for record, oracle_record in zip(got["steps"], expected["steps"], strict=True):
            if record["id"] in self.completed_before_stop and record["status"] == "succeeded":
                assert record["output"] == oracle_record["output"]

    def teardown(self) -> None:
        if not hasattr(self, "kernel") or (self.kernel.gi_frame is None and self.result is None):
            return  # never started, or a rule already failed with the generator dead
        for _ in range(10_000):
            if self.result is not None:
                break
            self._send([self._answer(call_id, cancel=False) for call_id in self._completable()])
        self._check_result()


TestKernelMachine = KernelMachine.TestCase
