"""``KernelSession`` with a hand-written backend: the driver loop, caller cancellation, partial results."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from flowkernel import (
    AttemptStatus,
    Cancel,
    Cancelled,
    ExecutionResult,
    Flow,
    FlowInputError,
    Input,
    Invoke,
    ProtocolError,
    Returned,
    RunStatus,
    StartTimer,
    Step,
    StepStatus,
    TimerFired,
)
from flowkernel.host import KernelSession, new_run_id, partial_result

from .support import FakeBackend, chain_flow, src, use


class Interrupt(Exception):
    """Stands for whatever stops the caller (Ctrl-C, task cancellation)."""


def guarded(session: KernelSession, body: Callable[[], object]) -> None:
    """Run ``body`` inside ``session.guard()``, as every driver's loop does."""
    with session.guard():
        body()


def test_the_driver_loop_runs_a_flow_to_the_end() -> None:
    backend = FakeBackend()
    session = KernelSession(chain_flow(), None, backend, run_id="run-7", max_concurrency=2)
    assert session.options.run_id == "run-7"
    assert session.options.max_concurrency == 2
    assert session.running
    with pytest.raises(RuntimeError, match="not finished"):
        session.finished_result()
    session.start()
    assert backend.ids() == ["a@1", "b@1"]
    backend.finish("b@1", "B")
    session.feed(backend.take())
    assert backend.ids() == ["a@1", "b@1"]  # c waits for a
    backend.finish("a@1", "A")
    session.feed(backend.take())
    assert backend.ids() == ["a@1", "b@1", "c@1"]
    assert backend.started[-1].arguments == {"v": "A"}
    backend.finish("c@1", "C")
    session.feed(backend.take())
    backend.finish("d@1", "D")
    session.feed(backend.take())
    assert not session.running
    result = session.finished_result()
    assert result is session.result
    assert result.status is RunStatus.SUCCEEDED
    assert result.run_id == "run-7"
    assert result.outputs == {"b": "B", "d": "D"}
    assert not backend._live


def test_a_fresh_run_id_is_made_up_when_none_is_given() -> None:
    first = KernelSession(chain_flow(), None, FakeBackend())
    second = KernelSession(chain_flow(), None, FakeBackend())
    assert re.fullmatch(r"[0-9a-f]{32}", first.options.run_id)
    assert first.options.run_id != second.options.run_id
    assert new_run_id() != new_run_id()


def test_guard_stops_the_run_and_attaches_the_partial_result() -> None:
    backend = FakeBackend()
    session = KernelSession(chain_flow(), None, backend, run_id="r")

    def body() -> None:
        session.start()
        backend.finish("a@1", "A")
        session.feed(backend.take())  # c starts; b and c are in flight
        raise Interrupt("stop!")

    with pytest.raises(Interrupt) as excinfo:
        guarded(session, body)
    exc = excinfo.value
    result = partial_result(exc)
    assert result is not None
    assert result is session.result
    assert result.status is RunStatus.CANCELLED
    assert result.reason == "cancelled: Interrupt in the caller"
    assert [s.status for s in result.steps] == [
        StepStatus.SUCCEEDED,
        StepStatus.CANCELLED,
        StepStatus.CANCELLED,
        StepStatus.CANCELLED,
    ]
    assert result.step("b").attempts[0].status is AttemptStatus.CANCELLED
    assert result.step("d").reason == "dependency 'c' was cancelled"
    assert result.step("d").attempts == ()
    assert backend.handles["b@1"].cancelled
    assert backend.handles["c@1"].cancelled
    assert not backend.handles["a@1"].cancelled
    assert not backend._live
    assert any("partial result" in note for note in exc.__notes__)


def test_guard_delivers_completions_that_arrived_before_the_interrupt() -> None:
    backend = FakeBackend()
    session = KernelSession(chain_flow(), None, backend)

    def body() -> None:
        session.start()
        backend.finish("b@1", "B")  # posted, never fed
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as excinfo:
        guarded(session, body)
    result = partial_result(excinfo.value)
    assert result is not None
    assert result.step("b").status is StepStatus.SUCCEEDED
    assert result.step("b").output == "B"
    assert result.step("a").status is StepStatus.CANCELLED
    assert result.reason == "cancelled: KeyboardInterrupt in the caller"


def test_guard_before_start_cancels_every_step() -> None:
    backend = FakeBackend()
    session = KernelSession(chain_flow(), None, backend)

    def body() -> None:
        raise Interrupt

    with pytest.raises(Interrupt) as excinfo:
        guarded(session, body)
    result = partial_result(excinfo.value)
    assert result is not None
    assert result.status is RunStatus.CANCELLED
    assert all(s.status is StepStatus.CANCELLED for s in result.steps)
    assert backend.started == []


def test_guard_does_nothing_once_the_run_has_finished() -> None:
    backend = FakeBackend()
    session = KernelSession(Flow(name="f", steps=[Step(id="a", tool=src)]), None, backend)

    def body() -> None:
        session.start()
        backend.finish("a@1", 1)
        session.feed(backend.take())
        raise Interrupt

    with pytest.raises(Interrupt) as excinfo:
        guarded(session, body)
    assert partial_result(excinfo.value) is None
    assert session.finished_result().status is RunStatus.SUCCEEDED


def test_bad_inputs_are_refused_before_the_run_starts() -> None:
    flow = Flow(name="f", steps=[Step(id="a", tool=use, arguments={"v": Input("x")})])
    backend = FakeBackend()
    with pytest.raises(FlowInputError) as excinfo:
        KernelSession(flow, {}, backend)
    assert partial_result(excinfo.value) is None
    assert not backend.started
    assert [p.location for p in excinfo.value.problems] == ["inputs.x"]


class DoubleBackend(FakeBackend):
    """Broken: bypasses the exactly-once table and posts a completion twice."""

    def finish(self, call_id: str, value: Any = None) -> None:
        completion = Returned(call_id, value, 1.0, 2.0)
        self.post(completion)
        self.post(completion)


def test_a_backend_completing_a_call_twice_gets_a_protocol_error() -> None:
    backend = DoubleBackend()
    session = KernelSession(chain_flow(), None, backend)

    def body() -> None:
        session.start()
        backend.finish("a@1")
        session.feed(backend.take())

    with pytest.raises(ProtocolError, match=r"completed call 'a@1' twice") as excinfo:
        guarded(session, body)
    assert partial_result(excinfo.value) is None


class DeafBackend(FakeBackend):
    """Broken: ignores cancellation."""

    def cancel(self, command: Cancel) -> None:
        pass


def test_a_backend_ignoring_cancellation_gets_a_protocol_error() -> None:
    backend = DeafBackend()
    session = KernelSession(chain_flow(), None, backend)

    def body() -> None:
        session.start()
        raise Interrupt

    with pytest.raises(ProtocolError, match="did not answer the cancellation") as excinfo:
        guarded(session, body)
    assert isinstance(excinfo.value.__context__, Interrupt)


class RaisingBackend(FakeBackend):
    """Its ``start_invoke`` is interrupted on the second invoke of a batch (Ctrl-C while starting it)."""

    def start_invoke(self, command: Invoke) -> None:
        if self.started:
            raise KeyboardInterrupt
        super().start_invoke(command)


def test_an_interrupt_while_starting_a_batch_still_gives_a_partial_result() -> None:
    backend = RaisingBackend()
    session = KernelSession(chain_flow(), None, backend)
    with pytest.raises(KeyboardInterrupt) as excinfo:
        guarded(session, session.start)
    result = partial_result(excinfo.value)
    assert result is not None
    assert result.step("a").status is StepStatus.CANCELLED
    assert result.step("b").status is StepStatus.CANCELLED


def test_backend_delivers_each_call_exactly_once() -> None:
    backend = FakeBackend()
    backend.start_invoke(Invoke("x@1", "x", src, {}, 1))
    backend.start_timer(StartTimer("t", 1.0))
    assert len(backend._live) == 2
    backend.cancel(Cancel("x@1"))
    backend.finish("x@1", "late")  # dropped: already answered as cancelled
    backend.complete(TimerFired("t"))
    backend.complete(TimerFired("t"))  # dropped: already completed
    backend.cancel(Cancel("t"))  # no-op: already completed
    assert backend.take() == [Cancelled("x@1"), TimerFired("t")]
    assert backend.handles["x@1"].cancelled
    assert not backend.handles["t"].cancelled
    assert not backend._live


def test_partial_result_helper() -> None:
    assert partial_result(ValueError()) is None
    exc = ValueError()
    exc.partial_result = "not a result"  # type: ignore[attr-defined]
    assert partial_result(exc) is None
    result = ExecutionResult("r", "f", "1", RunStatus.CANCELLED)
    exc.partial_result = result  # type: ignore[attr-defined]
    assert partial_result(exc) is result
