"""Resuming through ``KernelSession``: replay, calls in flight started again, divergence, refusals."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from flowkernel import (
    ExecutionResult,
    Fallback,
    Flow,
    FlowValidationError,
    Input,
    Ref,
    RetryPolicy,
    Step,
    StepStatus,
    StopRun,
    TimerFired,
    tool,
)
from flowkernel.errors import FlowChangedError, NonDeterminismError, RunExistsError
from flowkernel.host import KernelSession, RunSettings, load_driver, partial_result
from flowkernel.host.journal import SqliteJournal, open_run, replay

from .support import FakeBackend, chain_flow, src, use


@tool
def other(v: Any) -> Any:
    return v


def session(
    flow: Flow, backend: FakeBackend, inputs: Mapping[str, Any] | None = None, **settings: Any
) -> KernelSession:
    """A session opened the way drivers open one (``open_run`` first)."""
    given: RunSettings = settings  # type: ignore[assignment]
    opened = open_run(flow, inputs, given)
    return KernelSession(flow, opened.inputs, backend, recorder=opened.recorder, **opened.settings)


def finish_all(run: KernelSession, backend: FakeBackend, value: Any = 1) -> None:
    """Complete every call as it starts, until the run ends."""
    while run.running:
        for call_id in list(backend.handles):
            if backend.is_live(call_id):
                backend.finish(call_id, value)
        run.feed(backend.take())
    run.record_result()


@pytest.fixture
def journal(tmp_path: Path) -> SqliteJournal:
    return SqliteJournal(tmp_path / "journal.db")


def test_resume_replays_the_record_and_starts_again_only_the_calls_in_flight(journal: SqliteJournal) -> None:
    first = FakeBackend()
    crashed = session(chain_flow(), first, journal=journal, run_id="r")
    crashed.start()
    assert first.ids() == ["a@1", "b@1"]
    first.finish("a@1", 5)
    crashed.feed(first.take())  # recorded, then consumed: c@1 starts; the process dies here
    assert first.ids() == ["a@1", "b@1", "c@1"]

    second = FakeBackend()
    resumed = session(chain_flow(), second, journal=journal, run_id="r", resume=True)
    resumed.start()
    assert second.ids() == ["b@1", "c@1"]  # a@1 completed and was recorded: it never runs again
    assert second.started[1].arguments == {"v": 5}
    finish_all(resumed, second, 5)
    result = resumed.finished_result()
    assert result.outputs == {"b": 5, "d": 5}
    assert replay(chain_flow(), journal, "r").canonical() == result.canonical()
    assert [run.status for run in journal.runs()] == ["succeeded"]


def test_a_call_the_kernel_had_cancelled_is_answered_cancelled_not_started_again(journal: SqliteJournal) -> None:
    flow = Flow(name="slow", steps=[Step(id="a", tool=src, timeout=1.0)])
    first = FakeBackend()
    crashed = session(flow, first, journal=journal, run_id="r")
    crashed.start()
    [timer] = first.timers
    first.complete(TimerFired(timer.call_id))
    crashed.feed(first.take())  # the timeout is recorded; the kernel cancels a@1; the process dies
    assert first.handles["a@1"].cancelled

    second = FakeBackend()
    resumed = session(flow, second, journal=journal, run_id="r", resume=True)
    resumed.start()
    assert second.started == []
    assert second.timers == []
    resumed.feed(second.take())
    resumed.record_result()
    step = resumed.finished_result().step("a")
    assert step.status == StepStatus.FAILED
    assert step.error is not None
    assert step.error.kind == "timeout"


def test_a_stop_ends_the_record_and_the_run_resumes_from_before_it(journal: SqliteJournal) -> None:
    first = FakeBackend()
    stopped = session(chain_flow(), first, journal=journal, run_id="r")
    stopped.start()
    first.finish("a@1", 7)
    stopped.feed([*first.take(), StopRun("Ctrl-C")])
    while stopped.running:
        stopped.feed(first.take())
    stopped.record_result()
    assert stopped.finished_result().status == "cancelled"
    [summary] = journal.runs()
    assert (summary.status, summary.entries) == ("incomplete", 1)

    resumed = load_driver("sync").run(chain_flow(), journal=journal, run_id="r", resume=True)
    assert resumed.status == "succeeded"
    assert resumed.step("c").output == 7  # a@1's recorded value, not a new call's
    assert resumed.step("d").attempts[0].status == "succeeded"


def test_replay_names_the_first_divergence(journal: SqliteJournal) -> None:
    load_driver("sync").run(chain_flow(), journal=journal, run_id="r")
    changed = Flow(name="chain", steps=[*chain_flow().steps[:2], Step(id="c", tool=other, arguments={"v": Ref("a")})])
    with pytest.raises(FlowChangedError, match="structure of flow 'chain' changed"):
        replay(changed, journal, "r")
    with pytest.raises(NonDeterminismError) as caught:
        replay(changed, journal, "r", allow_flow_change=True)
    error = caught.value
    assert (error.entry, error.recorded, error.replayed) == (1, ("c@1 use",), ("c@1 other",))
    assert "'c@1 other' where the journal recorded 'c@1 use'" in str(error)


def test_a_divergence_on_resume_starts_nothing(journal: SqliteJournal) -> None:
    first = FakeBackend()
    crashed = session(chain_flow(), first, journal=journal, run_id="r")
    crashed.start()
    first.finish("a@1")
    first.finish("b@1")
    crashed.feed(first.take())
    first.finish("c@1")
    crashed.feed(first.take())
    changed = Flow(name="chain", steps=[*chain_flow().steps[:2], Step(id="c", tool=other, arguments={"v": Ref("a")})])
    second = FakeBackend()
    resumed = session(changed, second, journal=journal, run_id="r", resume=True, allow_flow_change=True)
    with pytest.raises(NonDeterminismError, match="entry 1"), resumed.guard():
        resumed.start()
    assert second.started == []


def test_a_change_replay_does_not_reach_is_resumed_with_allow_flow_change(journal: SqliteJournal) -> None:
    first = FakeBackend()
    crashed = session(chain_flow(), first, journal=journal, run_id="r")
    crashed.start()
    first.finish("a@1", 3)
    crashed.feed(first.take())
    grown = Flow(name="chain", steps=[*chain_flow().steps, Step(id="e", tool=use, arguments={"v": Ref("d")})])
    with pytest.raises(FlowChangedError, match="allow_flow_change=True"):
        session(grown, FakeBackend(), journal=journal, run_id="r", resume=True)
    second = FakeBackend()
    resumed = session(grown, second, journal=journal, run_id="r", resume=True, allow_flow_change=True)
    resumed.start()
    finish_all(resumed, second, 3)
    assert resumed.finished_result().outputs == {"b": 3, "e": 3}


def test_resume_keeps_the_options_and_inputs_it_started_with(journal: SqliteJournal) -> None:
    flow = Flow(name="echo", steps=[Step(id="a", tool=use, arguments={"v": Input("x")})])
    first = FakeBackend()
    session(flow, first, {"x": "in"}, journal=journal, run_id="r", max_concurrency=3).start()
    with pytest.raises(ValueError, match="started with max_concurrency=3"):
        session(flow, FakeBackend(), journal=journal, run_id="r", resume=True, max_concurrency=1)
    with pytest.raises(ValueError, match="started with other inputs"):  # start-or-resume: other inputs refused
        session(flow, FakeBackend(), {"x": "other"}, journal=journal, run_id="r", resume=True)
    second = FakeBackend()
    resumed = session(flow, second, journal=journal, run_id="r", resume=True, max_concurrency=3)
    assert resumed.options.max_concurrency == 3
    resumed.start()
    assert second.started[0].arguments == {"v": "in"}


def test_misuse_is_refused_before_anything_is_recorded(journal: SqliteJournal) -> None:
    load_driver("sync").run(chain_flow(), journal=journal, run_id="r")
    with pytest.raises(RunExistsError, match="already holds a run 'r'"):
        load_driver("sync").run(chain_flow(), journal=journal, run_id="r")
    with pytest.raises(ValueError, match="needs the journal"):
        session(chain_flow(), FakeBackend(), run_id="r", resume=True)
    with pytest.raises(ValueError, match="needs the run_id"):
        session(chain_flow(), FakeBackend(), journal=journal, resume=True)
    with pytest.raises(ValueError, match="must be opened first"):
        KernelSession(chain_flow(), None, FakeBackend(), journal=journal)
    assert len(journal.runs()) == 1


def test_a_new_journaled_run_without_an_id_gets_one(journal: SqliteJournal) -> None:
    result = load_driver("sync").run(chain_flow(), journal=journal)
    [summary] = journal.runs()
    assert (summary.run_id, summary.steps_done) == (result.run_id, 4)


# ---- idempotency keys ---------------------------------------------------------------------------

KEYS: list[tuple[str, str]] = []


@tool(retry=RetryPolicy(max_attempts=2, initial_delay=0.001))
def charge(amount: int, idempotency_key: str) -> int:
    """Fails its first attempt, as a flaky payment service would."""
    KEYS.append(("charge", idempotency_key))
    if sum(1 for name, key in KEYS if key == idempotency_key) == 1:
        raise ConnectionError("timed out")
    return amount


@tool
def refund(amount: int, idempotency_key: str = "") -> int:
    KEYS.append(("refund", idempotency_key))
    return -amount


def test_a_tool_that_takes_an_idempotency_key_gets_one_per_run_and_step_stable_across_retries() -> None:
    KEYS.clear()
    flow = Flow(name="pay", steps=[Step(id="pay", tool=charge, arguments={"amount": 5})])
    result = load_driver("sync").run(flow, run_id="run-1")
    assert result.outputs == {"pay": 5}
    assert KEYS == [("charge", "run-1/pay"), ("charge", "run-1/pay")]
    assert (charge.idempotency_key, use.idempotency_key) == (True, False)


def test_a_fallback_tool_gets_a_key_of_its_own() -> None:
    KEYS.clear()

    @tool
    def broken(amount: int, idempotency_key: str) -> int:
        KEYS.append(("broken", idempotency_key))
        raise RuntimeError("down")

    flow = Flow(
        name="pay",
        steps=[Step(id="pay", tool=broken, arguments={"amount": 5}, on_error=Fallback(tool=refund))],
    )
    assert load_driver("sync").run(flow, run_id="r").outputs == {"pay": -5}
    assert KEYS == [("broken", "r/pay"), ("refund", "r/pay/fallback")]


def test_a_step_cannot_set_the_idempotency_key_itself() -> None:
    with pytest.raises(FlowValidationError, match="receives its 'idempotency_key' from the driver"):
        Flow(name="pay", steps=[Step(id="pay", tool=refund, arguments={"amount": 1, "idempotency_key": "mine"})])


def test_a_stop_while_a_batch_waits_to_be_recorded_still_answers_its_calls(tmp_path: Path) -> None:
    """The asyncio driver records in a worker thread; if the run is cancelled before that thread even
    starts, the batch it held must reach the kernel with the stop (else its calls go unanswered)."""
    journal = SqliteJournal(tmp_path / "j.db")
    release = threading.Event()

    async def main() -> ExecutionResult | None:
        busy = ThreadPoolExecutor(max_workers=1)  # the record job will queue behind a blocker
        asyncio.get_running_loop().set_default_executor(busy)
        run = asyncio.create_task(load_driver("asyncio").run(chain_flow(), journal=journal, run_id="r"))
        while not journal.runs():  # the header is written: the run has started
            await asyncio.sleep(0.001)
        busy.submit(release.wait)
        await asyncio.sleep(0.05)  # a@1 and b@1 complete; their batch waits for the busy thread
        run.cancel()
        try:
            await run
        except asyncio.CancelledError as cancelled:
            return partial_result(cancelled)
        finally:
            release.set()
        return None

    result = asyncio.run(main())
    assert result is not None
    assert [(step.id, step.status) for step in result.steps] == [
        ("a", "succeeded"),
        ("b", "succeeded"),
        ("c", "cancelled"),
        ("d", "cancelled"),
    ]


def test_completions_that_arrive_while_a_run_is_stopped_are_recorded(journal: SqliteJournal) -> None:
    """Issue 10.4: a completion taken during the stop reached the partial result but not the journal, so
    `flowkernel runs` counted one step fewer, and a resume would have called its tool again."""
    backend = FakeBackend()
    run = session(chain_flow(), backend, journal=journal, run_id="r")

    def body() -> None:
        run.start()
        backend.finish("a@1", 7)
        run.feed(backend.take())
        backend.finish("b@1", 8)  # arrives as the caller stops: taken by the stop, not by the loop
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as excinfo, run.guard():
        body()
    partial = partial_result(excinfo.value)
    assert partial is not None
    assert [s.status for s in partial.steps[:2]] == ["succeeded", "succeeded"]
    [summary] = journal.runs()
    assert summary.steps_done == 2

    resumed = load_driver("sync").run(chain_flow(), journal=journal, run_id="r", resume=True)
    assert resumed.status == "succeeded"
    assert (resumed.step("a").output, resumed.step("b").output) == (7, 8)  # recorded, not called again
    assert [a.status for a in resumed.step("b").attempts] == ["succeeded"]
