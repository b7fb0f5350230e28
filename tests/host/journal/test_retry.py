"""Resuming a finished run that failed, once its tool is fixed: what failed, was cancelled or was skipped
because of it runs again; what succeeded keeps its output and its tool is not called again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flowkernel import Flow, Input, Item, Ref, RetryPolicy, Step, tool
from flowkernel.cli.app import cli
from flowkernel.events import Event, StepStarted
from flowkernel.host import installed_drivers, load_driver
from flowkernel.host.journal import SqliteJournal, replay, retry_failed

CALLS: list[str] = []
BROKEN: set[str] = set()  # the steps whose tool is still broken


@tool
def work(n: int, name: str) -> int:
    CALLS.append(name)
    if name in BROKEN:
        raise RuntimeError(f"{name} is broken")
    return n + 1


@tool
def slow_once(n: int, name: str) -> int:
    """Times out on its first attempt only (its step retries a timeout)."""
    CALLS.append(name)
    if CALLS.count(name) == 1:
        time.sleep(1.0)
    return n


def step(name: str, after: str | None = None, **options: Any) -> Step:
    n = Ref(after) if after else Input("n")
    return Step(id=name, tool=work, arguments={"n": n, "name": name}, **options)


FLOW = Flow(
    name="retried",
    steps=[
        step("a"),
        step("b", "a", retry=RetryPolicy(max_attempts=2, initial_delay=0)),
        step("c", "b"),
        step("d"),
        step("e", "d"),
    ],
)


@pytest.fixture(autouse=True)
def clean() -> None:
    CALLS.clear()
    BROKEN.clear()


def failed_run(journal: SqliteJournal, flow: Flow = FLOW, driver: str = "sync", **settings: Any) -> None:
    BROKEN.add("b")
    result = load_driver(driver).run_blocking(flow, {"n": 0}, journal=journal, run_id="r", **settings)
    assert result.status == "failed"
    assert CALLS.count("b") == 2  # both attempts
    CALLS.clear()
    BROKEN.clear()  # the tool is fixed


@pytest.mark.parametrize("driver", ["sync", "asyncio", "trio", "dask"])
@pytest.mark.parametrize("limit", [None, 1])
def test_a_failed_run_resumed_with_retry_runs_only_what_did_not_succeed(
    driver: str, limit: int | None, tmp_path: Path
) -> None:
    if driver not in installed_drivers():
        pytest.skip(f"the {driver} driver is not installed")
    runner = load_driver(driver)
    with SqliteJournal(tmp_path / "j.db") as journal:
        failed_run(journal, driver=driver, max_concurrency=limit)
        same = runner.run_blocking(FLOW, journal=journal, run_id="r", resume=True)  # not asked: replayed as it is
        assert (same.status, CALLS) == ("failed", [])
        assert retry_failed(journal, "r") is True
        assert [run.status for run in journal.runs()] == ["incomplete"]
        result = runner.run_blocking(FLOW, journal=journal, run_id="r", resume=True)
        assert result.status == "succeeded"
        assert sorted(CALLS) == ["b", "c"]  # a, d and e succeeded the first time: not called again
        assert result.outputs == {"c": 3, "e": 2}
        assert [result.step(name).output for name in "abcde"] == [1, 2, 3, 1, 2]
        assert [a.status for a in result.step("b").attempts] == ["succeeded"]  # the retry's own attempt
        assert [run.status for run in journal.runs()] == ["succeeded"]
        assert replay(FLOW, journal, "r") == result  # the extended record replays to the retry's result
        again = runner.run_blocking(FLOW, journal=journal, run_id="r", resume=True)
        assert again == result
        assert sorted(CALLS) == ["b", "c"]
        assert retry_failed(journal, "r") is False  # succeeded: nothing to retry


def test_a_run_that_fails_again_can_be_retried_again(tmp_path: Path) -> None:
    runner = load_driver("sync")
    with SqliteJournal(tmp_path / "j.db") as journal:
        failed_run(journal)
        BROKEN.add("b")
        retry_failed(journal, "r")
        assert runner.run_blocking(FLOW, journal=journal, run_id="r", resume=True).status == "failed"
        assert sorted(CALLS) == ["b", "b"]
        CALLS.clear()
        BROKEN.clear()
        retry_failed(journal, "r")
        assert runner.run_blocking(FLOW, journal=journal, run_id="r", resume=True).status == "succeeded"
        assert sorted(CALLS) == ["b", "c"]


def test_an_unfinished_or_succeeded_run_is_not_marked(tmp_path: Path) -> None:
    with SqliteJournal(tmp_path / "j.db") as journal:
        load_driver("sync").run_blocking(FLOW, {"n": 0}, journal=journal, run_id="ok")
        entries = len(journal.load("ok").entries)
        assert retry_failed(journal, "ok") is False
        assert len(journal.load("ok").entries) == entries


class Interrupt(Exception):
    pass


def test_a_retry_stopped_half_way_resumes_as_a_retry(tmp_path: Path) -> None:
    def stop_at_c(event: Event) -> None:
        if isinstance(event, StepStarted) and event.path == "c":
            raise Interrupt

    runner = load_driver("sync")
    with SqliteJournal(tmp_path / "j.db") as journal:
        failed_run(journal, max_concurrency=1)
        retry_failed(journal, "r")
        with pytest.raises(Interrupt):
            runner.run_blocking(FLOW, journal=journal, run_id="r", resume=True, on_event=stop_at_c)
        assert CALLS == ["b"]
        result = runner.run_blocking(FLOW, journal=journal, run_id="r", resume=True)  # no flag: still the retry
        assert CALLS == ["b", "c"]
        assert result.status == "succeeded"
        assert replay(FLOW, journal, "r") == result


MAPPED = Flow(
    name="mapped",
    steps=[
        Step(id="each", tool=work, map=Input("items"), arguments={"n": Item(), "name": "item"}),
        Step(id="fine", tool=work, arguments={"n": 1, "name": "fine"}),
    ],
)


@tool
def element(n: int) -> int:
    CALLS.append(f"element {n}")
    if f"element {n}" in BROKEN:
        raise RuntimeError("broken")
    return n * 10


def test_only_the_failed_element_of_a_map_step_runs_again(tmp_path: Path) -> None:
    flow = Flow(name="map", steps=[Step(id="each", tool=element, map=Input("items"), arguments={"n": Item()})])
    runner = load_driver("sync")
    with SqliteJournal(tmp_path / "j.db") as journal:
        BROKEN.add("element 2")
        assert runner.run_blocking(flow, {"items": [1, 2, 3]}, journal=journal, run_id="r").status == "failed"
        CALLS.clear()
        BROKEN.clear()
        retry_failed(journal, "r")
        result = runner.run_blocking(flow, journal=journal, run_id="r", resume=True)
    assert result.outputs == {"each": [10, 20, 30]}
    assert CALLS == ["element 2"]


def test_a_kept_step_whose_first_attempt_timed_out_is_not_called_again(tmp_path: Path) -> None:
    flow = Flow(
        name="timeouts",
        steps=[
            Step(
                id="t",
                tool=slow_once,
                arguments={"n": 5, "name": "t"},
                timeout=0.2,
                retry=RetryPolicy(max_attempts=2, initial_delay=0),
            ),
            step("b", "t"),
        ],
    )
    runner = load_driver("sync")
    with SqliteJournal(tmp_path / "j.db") as journal:
        BROKEN.add("b")
        assert runner.run_blocking(flow, {}, journal=journal, run_id="r").status == "failed"
        assert CALLS == ["t", "t", "b"]
        CALLS.clear()
        BROKEN.clear()
        retry_failed(journal, "r")
        result = runner.run_blocking(flow, journal=journal, run_id="r", resume=True)
    assert (result.status, CALLS) == ("succeeded", ["b"])
    first, second = result.step("t").attempts  # kept as the first run recorded them
    assert (first.error.kind if first.error else None, str(second.status)) == ("timeout", "succeeded")


CLI_FLOWS = """
from flowkernel import Flow, Input, Ref, Step, tool
import os

@tool
def flaky(n: int) -> int:
    with open(os.environ["CALLS_LOG"], "a") as log:
        log.write("flaky\\n")
    if os.path.exists(os.environ["BROKEN_FLAG"]):
        raise RuntimeError("broken")
    return n + 1

@tool
def steady(n: int) -> int:
    with open(os.environ["CALLS_LOG"], "a") as log:
        log.write("steady\\n")
    return n

flow = Flow(name="cli-retry", steps=[
    Step(id="s", tool=steady, arguments={"n": Input("n")}),
    Step(id="f", tool=flaky, arguments={"n": Ref("s")}),
])
"""


def test_flowkernel_resume_retry_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "retry_flows.py"
    module.write_text(CLI_FLOWS)
    log, broken, journal = tmp_path / "calls.log", tmp_path / "broken", tmp_path / "runs.db"
    monkeypatch.setenv("CALLS_LOG", str(log))
    monkeypatch.setenv("BROKEN_FLAG", str(broken))
    broken.touch()
    runner = CliRunner()
    ran = runner.invoke(cli, ["run", f"{module}:flow", "-i", "n=1", "--journal", str(journal), "--run-id", "r"])
    assert ran.exit_code == 1, ran.output
    broken.unlink()
    plain = runner.invoke(cli, ["resume", str(journal), "r", "--json"])
    assert plain.exit_code == 1
    assert log.read_text().split() == ["steady", "flaky"]
    retried = runner.invoke(cli, ["resume", str(journal), "r", "--retry-failed", "--json"])
    assert retried.exit_code == 0, retried.output
    assert log.read_text().split() == ["steady", "flaky", "flaky"]
    shown = runner.invoke(cli, ["show", str(journal), "r"])
    assert shown.exit_code == 0, shown.output
