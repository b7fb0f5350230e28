"""The step cache's middleware, through real runs (sync driver): what opts in and out, what is stored
and what never is, the typed error for arguments that cannot key the cache, and where it sits among
the run's other middleware."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from flowkernel import CachePolicy, Fallback, Flow, Invoke, Returned, Step, tool
from flowkernel.errors import RunOptionsError
from flowkernel.events import Event, StepFinished, without_timing
from flowkernel.host import CallWorld, call_sync, load_driver, mark_cached
from flowkernel.host.cache import StepCache, step_cache

from .flows import calls, count_call, plain, square

SYNC = load_driver("sync")


@pytest.fixture
def cache(tmp_path: Path) -> Any:
    with StepCache(tmp_path / "cache.db") as opened:
        yield opened


def run_twice(flow: Flow, cache: StepCache, **settings: Any) -> tuple[Any, Any]:
    return SYNC.run_blocking(flow, cache=cache, **settings), SYNC.run_blocking(flow, cache=cache, **settings)


def test_a_step_policy_overrides_the_tools_and_false_opts_out(tmp_path: Path, cache: StepCache) -> None:
    log = str(tmp_path / "log")
    flow = Flow(
        name="f",
        steps=[
            Step(id="tools_policy", tool=square, arguments={"x": 1, "log": log}),
            Step(id="opted_out", tool=square, arguments={"x": 2, "log": log}, cache=False),
            Step(id="opted_in", tool=plain, arguments={"x": 3, "log": log}, cache=CachePolicy()),
        ],
    )
    first, second = run_twice(flow, cache)
    assert first.outputs == second.outputs == {"tools_policy": 1, "opted_out": 4, "opted_in": 4}
    assert {s.id: s.attempts[0].cached for s in second.steps} == {
        "tools_policy": True,
        "opted_out": False,
        "opted_in": True,
    }
    assert sorted(calls(log)) == ["plain 3", "square 1", "square 2", "square 2"]  # the steps run at once


def test_step_finished_events_say_which_steps_the_cache_answered(tmp_path: Path, cache: StepCache) -> None:
    log = str(tmp_path / "log")

    @tool
    def breaks(x: int) -> int:
        raise ValueError("no")

    flow = Flow(
        name="f",
        steps=[
            Step(id="hit", tool=square, arguments={"x": 1, "log": log}),
            Step(id="opted_out", tool=square, arguments={"x": 2, "log": log}, cache=False),
            Step(id="fell_back", tool=breaks, arguments={"x": 3}, cache=CachePolicy(), on_error=Fallback(value=0)),
        ],
    )
    runs: list[list[Event]] = [[], []]
    for events in runs:
        SYNC.run_blocking(flow, cache=cache, on_event=events.append, run_id="r")
    first, second = ({e.path: e for e in events if type(e) is StepFinished} for events in runs)
    assert {path: e.cached for path, e in first.items()} == {"hit": False, "opted_out": False, "fell_back": False}
    assert {path: e.cached for path, e in second.items()} == {"hit": True, "opted_out": False, "fell_back": False}
    # Not a canonical fact (it depends on what ran before): without_timing drops it, as canonical() does.
    assert {path: without_timing(e) for path, e in first.items()} == {
        path: without_timing(e) for path, e in second.items()
    }


def test_a_new_version_is_not_served_the_old_versions_results(tmp_path: Path, cache: StepCache) -> None:
    log = str(tmp_path / "log")

    def flow(version: str) -> Flow:
        policy = CachePolicy(version=version)
        return Flow(name="f", steps=[Step(id="s", tool=square, arguments={"x": 4, "log": log}, cache=policy)])

    SYNC.run_blocking(flow("1"), cache=cache)
    assert SYNC.run_blocking(flow("2"), cache=cache).steps[0].attempts[0].cached is False
    assert SYNC.run_blocking(flow("1"), cache=cache).steps[0].attempts[0].cached is True
    assert calls(log) == ["square 4", "square 4"]


def test_an_expired_result_is_computed_again(tmp_path: Path) -> None:
    now = [1000.0]
    log = str(tmp_path / "log")
    flow = Flow(name="f", steps=[Step(id="s", tool=square, arguments={"x": 5, "log": log}, cache=CachePolicy(ttl=10))])
    with StepCache(tmp_path / "c.db", clock=lambda: now[0]) as cache:
        SYNC.run_blocking(flow, cache=cache)
        now[0] += 5
        assert SYNC.run_blocking(flow, cache=cache).steps[0].attempts[0].cached is True
        now[0] += 5
        assert SYNC.run_blocking(flow, cache=cache).steps[0].attempts[0].cached is False
    assert calls(log) == ["square 5", "square 5"]


@tool(cache=CachePolicy())
def flaky(x: int, log: str) -> int:
    count_call(log, f"flaky {x}")
    if calls(log).count(f"flaky {x}") == 1:  # its own first call (the other steps run at the same time)
        raise ConnectionError("first call fails")
    return x


@tool(cache=CachePolicy())
def as_tuple(x: int, log: str) -> tuple[int, int]:
    count_call(log, "as_tuple")
    return (x, x)


class Strict(BaseModel):
    n: int


@tool(cache=CachePolicy(), output_model=Strict)
def wrong_output(log: str) -> Any:
    count_call(log, "wrong_output")
    return {"n": "not a number"}


def test_errors_invalid_outputs_and_values_that_are_not_json_are_never_stored(tmp_path: Path, cache: StepCache) -> None:
    log = str(tmp_path / "log")
    flow = Flow(
        name="f",
        steps=[
            Step(id="flaky", tool=flaky, arguments={"x": 1, "log": log}),
            Step(id="tuple", tool=as_tuple, arguments={"x": 2, "log": log}),
            Step(id="wrong", tool=wrong_output, arguments={"log": log}, on_error="continue"),
        ],
    )
    first, second = run_twice(flow, cache)
    assert first.step("flaky").status == "failed"
    assert second.step("flaky").output == 1  # the error was not stored: called again
    assert second.step("tuple").output == (2, 2)  # a tuple would come back a list: never stored
    assert second.step("wrong").status == "failed"
    assert [s.attempts[0].cached for s in second.steps] == [False, False, False]
    assert cache.stats().entries == 1  # only flaky's value, from the second run
    assert SYNC.run_blocking(flow, cache=cache).step("flaky").attempts[0].cached is True


def test_arguments_that_cannot_key_the_cache_fail_the_call_with_a_typed_error(cache: StepCache) -> None:
    @tool(cache=CachePolicy())
    def takes_bytes(data: bytes) -> int:
        return len(data)

    result = SYNC.run_blocking(
        Flow(name="f", steps=[Step(id="s", tool=takes_bytes, arguments={"data": b"abc"})]), cache=cache
    )
    (error,) = result.errors
    assert error.type == "flowkernel.errors.CacheKeyError"
    assert error.message == (
        "step 's': arguments.data is a bytes, not JSON data: it cannot key the step cache "
        "(give the tool JSON arguments, or the step cache=False)"
    )


def test_the_idempotency_key_is_not_part_of_the_cache_key(tmp_path: Path, cache: StepCache) -> None:
    log = str(tmp_path / "log")

    @tool(cache=CachePolicy())
    def charge(amount: int, idempotency_key: str) -> str:
        count_call(log, idempotency_key)
        return f"charged {amount}"

    flow = Flow(name="f", steps=[Step(id="s", tool=charge, arguments={"amount": 5})])
    SYNC.run_blocking(flow, cache=cache, run_id="one")
    assert SYNC.run_blocking(flow, cache=cache, run_id="two").steps[0].attempts[0].cached is True
    assert len(calls(log)) == 1


def test_cache_is_innermost_so_the_other_middleware_see_every_call(tmp_path: Path, cache: StepCache) -> None:
    seen: list[tuple[str, Any]] = []

    def observe(call: Invoke) -> Generator[Invoke, Any, Any]:
        value = yield call
        seen.append((call.step_id, value))
        return value

    log = str(tmp_path / "log")
    flow = Flow(name="f", steps=[Step(id="s", tool=square, arguments={"x": 6, "log": log})])
    run_twice(flow, cache, middleware=[observe])
    assert seen == [("s", 36), ("s", 36)]
    assert calls(log) == ["square 6"]


def test_the_middleware_can_be_placed_by_hand(tmp_path: Path, cache: StepCache) -> None:
    log = str(tmp_path / "log")
    flow = Flow(name="f", steps=[Step(id="s", tool=square, arguments={"x": 7, "log": log})])
    for _ in range(2):
        result = SYNC.run_blocking(flow, middleware=[step_cache(cache)])
    assert result.steps[0].attempts[0].cached is True
    assert calls(log) == ["square 7"]


def test_a_cache_setting_that_is_not_a_step_cache_is_refused_before_the_run(tmp_path: Path) -> None:
    flow = Flow(name="f", steps=[Step(id="s", tool=plain, arguments={"x": 1, "log": str(tmp_path / "log")})])
    with pytest.raises(RunOptionsError, match=r"cache: must be a StepCache"):
        SYNC.run_blocking(flow, cache=str(tmp_path / "c.db"))  # type: ignore[arg-type]
    assert calls(tmp_path / "log") == []


def test_a_write_that_fails_keeps_the_value_and_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = str(tmp_path / "log")
    flow = Flow(name="f", steps=[Step(id="s", tool=square, arguments={"x": 8, "log": log})])
    with StepCache(tmp_path / "c.db", timeout=0.05) as cache, sqlite3.connect(tmp_path / "c.db") as other:
        other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock past the busy timeout
        with caplog.at_level(logging.WARNING, logger="flowkernel.cache"):
            result = SYNC.run_blocking(flow, cache=cache)
        other.rollback()
    assert result.outputs == {"s": 64}
    assert [a.cached for a in result.steps[0].attempts] == [False]
    assert "step s: its result could not be cached" in caplog.text
    assert "database is locked" in caplog.text


def test_mark_cached_counts_only_when_the_tool_is_not_called() -> None:
    @tool
    def one() -> int:
        return 1

    def answers(call: Invoke) -> Generator[Invoke, Any, Any]:
        mark_cached()
        return 2
        yield call  # a generator that returns before its yield

    def marks_then_calls(call: Invoke) -> Generator[Invoke, Any, Any]:
        mark_cached()
        return (yield call)

    def call(*middleware: Any) -> Any:
        return call_sync(Invoke("s@1", "s", one, {}, 1, "r"), time.monotonic, (), CallWorld({}, middleware))

    answered = call(answers)
    assert type(answered) is Returned
    assert (answered.value, answered.cached) == (2, True)
    assert call(marks_then_calls).cached is False
    mark_cached()  # outside a call: nothing to mark, no error
