"""A state machine drives the kernel directly, choosing which in-flight calls complete, in which order
and in which batches, and checks the protocol's invariants at every step and the oracle at the end."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from pydantic import ValidationError

from flowkernel import (
    Cancel,
    Cancelled,
    Command,
    Completion,
    ErrorInfo,
    ExecutionResult,
    Invoke,
    Raised,
    Returned,
    RunOptions,
    StopRun,
    run_flow,
)
from flowkernel.kernel.states import TRANSITIONS
from flowkernel.testing import Scenario, ScriptedFailure, oracle_result, scenarios


class KernelMachine(RuleBasedStateMachine):
    """Plays an adversarial driver against the kernel."""

    @initialize(scenario=scenarios(max_steps=15), limit=st.sampled_from([1, 2, 3, None]))
    def start(self, scenario: Scenario, limit: int | None) -> None:
        self.scenario = scenario
        self.limit = limit
        self.deps = {
            step.id: {scenario.flow.plan.step_ids[d] for d in deps}
            for step, deps in zip(scenario.flow.steps, scenario.flow.plan.deps, strict=True)
        }
        self.kernel = run_flow(scenario.flow, scenario.inputs, RunOptions(scenario.run_id, limit))
        self.in_flight: dict[str, Invoke] = {}
        self.issued: set[str] = set()
        self.succeeded: set[str] = set()
        self.completed_before_stop: set[str] = set()
        self.cancel_sent: set[str] = set()
        self.stopped = False
        self.result: ExecutionResult | None = None
        self._send(None)

    # ---- the driver's side --------------------------------------------------------------------

    def _absorb(self, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, Cancel):
                assert self.stopped, f"kernel cancelled {command.call_id} without being asked to stop"
                assert command.call_id in self.in_flight, f"cancel of {command.call_id}, which is not in flight"
                self.cancel_sent.add(command.call_id)
                continue
            assert isinstance(command, Invoke), f"unexpected command {command!r}"
            assert not self.stopped, "kernel dispatched a call after the run was stopped"
            assert command.call_id not in self.issued, f"call id {command.call_id} issued twice"
            missing = self.deps[command.step_id] - self.succeeded
            assert not missing, f"{command.step_id} dispatched before its dependencies {missing}"
            self.issued.add(command.call_id)
            self.in_flight[command.call_id] = command

    def _outcome(self, invoke: Invoke) -> Completion:
        try:
            value: Any = self.scenario.script.outcome(invoke.step_id, invoke.attempt, invoke.arguments)
        except ScriptedFailure as exc:
            return Raised(invoke.call_id, ErrorInfo.from_exception(exc), 0.0, 1.0)
        model = invoke.tool.output_model
        try:
            if model is not None:
                model.model_validate(value)
            self.succeeded.add(invoke.step_id)
        except ValidationError:
            pass
        return Returned(invoke.call_id, value, 0.0, 1.0)

    def _send(self, batch: list[Completion] | None) -> None:
        try:
            commands = self.kernel.send(batch)  # type: ignore[arg-type]
        except StopIteration as stop:
            self.result = stop.value
            assert self.result is not None, "the kernel generator had already ended"
            assert not self.in_flight, f"kernel finished with calls in flight: {sorted(self.in_flight)}"
            return
        self._absorb(commands)
        assert self.in_flight, "kernel waits for completions with nothing in flight"

    # ---- rules --------------------------------------------------------------------------------

    @precondition(lambda self: self.result is None)
    @rule(data=st.data())
    def complete_some_calls(self, data: st.DataObject) -> None:
        """Complete a non-empty subset of the calls in flight, in an adversarial order, as one batch."""
        chosen = data.draw(st.lists(st.sampled_from(sorted(self.in_flight)), min_size=1, unique=True))
        batch: list[Completion] = []
        for call_id in chosen:
            invoke = self.in_flight.pop(call_id)
            if self.stopped and call_id in self.cancel_sent and data.draw(st.booleans()):
                batch.append(Cancelled(call_id))
            else:
                if not self.stopped:
                    self.completed_before_stop.add(invoke.step_id)
                batch.append(self._outcome(invoke))
        self._send(batch)

    @precondition(lambda self: self.result is None and not self.stopped)
    @rule(dice=st.integers(0, 5))
    def caller_cancels(self, dice: int) -> None:
        """Now and then the caller stops the run: every call in flight is cancelled, nothing new starts."""
        if dice:
            return
        self.stopped = True
        in_flight = set(self.in_flight)
        self._send([StopRun("test")])
        assert self.cancel_sent == in_flight

    @precondition(lambda self: self.result is not None)
    @rule()
    def finished_run_matches_the_oracle(self) -> None:
        self._check_result()

    @invariant()
    def concurrency_limit_respected(self) -> None:
        if getattr(self, "limit", None) is not None:
            assert len(self.in_flight) <= self.limit

    def _check_transitions(self, result: ExecutionResult) -> None:
        """Every step moved only along the documented state table."""
        allowed = {(t.source, t.target) for t in TRANSITIONS}
        invoked = {call_id.partition("@")[0] for call_id in self.issued}
        for record in result.steps:
            path = ["pending", *(["running"] if record.id in invoked else []), str(record.status)]
            for edge in zip(path, path[1:], strict=False):
                assert edge in allowed, f"{record.id} moved {edge[0]} -> {edge[1]}, which the state table lacks"

    def teardown(self) -> None:
        if not hasattr(self, "kernel") or (self.kernel.gi_frame is None and self.result is None):
            return  # never started, or a rule already failed with the generator dead
        while self.result is None:
            batch = [self._outcome(self.in_flight.pop(call_id)) for call_id in sorted(self.in_flight)]
            self._send(batch)
        self._check_result()

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
            if record["id"] in self.completed_before_stop:
                assert record == oracle_record
            else:
                assert record["status"] in ("cancelled", "skipped", "succeeded", "failed")


TestKernelMachine = KernelMachine.TestCase
