"""The critical path, on results built by hand: exact times, so every choice is known."""

from __future__ import annotations

from flowkernel import (
    AttemptRecord,
    AttemptStatus,
    ExecutionResult,
    Flow,
    RunStatus,
    Step,
    StepRecord,
    StepStatus,
    tool,
)
from flowkernel.pictures.critical import critical_path, span_of

OK = AttemptStatus.SUCCEEDED


def ran(step_id: str, start: float, end: float, subflow: ExecutionResult | None = None) -> StepRecord:
    return StepRecord(step_id, StepStatus.SUCCEEDED, attempts=(AttemptRecord(1, OK, start, end),), subflow=subflow)


def run(*steps: StepRecord) -> ExecutionResult:
    return ExecutionResult("r", "f", "1", RunStatus.SUCCEEDED, steps=steps)


@tool
def work() -> int:
    return 1


def test_the_flows_dependencies_decide_what_a_step_waited_for() -> None:
    result = run(ran("a", 0, 1), ran("b", 0, 3), ran("c", 3, 4))
    only_after_a = Flow(
        name="f", steps=[Step(id="a", tool=work), Step(id="b", tool=work), Step(id="c", tool=work, after=("a",))]
    )
    after_both = Flow(
        name="f", steps=[Step(id="a", tool=work), Step(id="b", tool=work), Step(id="c", tool=work, after=("a", "b"))]
    )
    assert critical_path(result, only_after_a) == {("a",), ("c",)}
    assert critical_path(result, after_both) == {("b",), ("c",)}  # of the two, b finished last
    assert critical_path(result) == {("b",), ("c",)}  # guessed from the times: b ended last before c began


def test_a_dependency_that_ended_after_the_step_began_was_not_waited_for() -> None:
    either = Flow(
        name="f",
        steps=[Step(id="a", tool=work), Step(id="b", tool=work), Step(id="c", tool=work, after=("a", "b"), join="any")],
    )
    # c needed either: it began when a ended, while b ran on; b ended later than a, but c did not wait for it
    assert critical_path(run(ran("a", 0, 1), ran("b", 0, 5), ran("c", 1, 6)), either) == {("a",), ("c",)}


def test_a_sub_runs_path_is_followed_into_it() -> None:
    elements = run(ran("item0", 1, 2), ran("item1", 1, 4), ran("item2", 1, 3))
    result = run(ran("source", 0, 1), StepRecord("each", StepStatus.SUCCEEDED, subflow=elements), ran("last", 4, 5))
    assert span_of(result.step("each")) == (1, 4)
    assert critical_path(result) == {("source",), ("each",), ("each", "item1"), ("last",)}


def test_instant_steps_and_steps_that_never_ran_end_the_search() -> None:
    result = run(ran("a", 1, 1), ran("b", 1, 1), StepRecord("skipped", StepStatus.SKIPPED))
    assert critical_path(result) == {("a",), ("b",)}  # each "waited" for the other: visited once
    assert critical_path(run(StepRecord("skipped", StepStatus.SKIPPED))) == frozenset()
