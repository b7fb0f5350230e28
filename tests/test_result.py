"""Results: JSON round trips, the canonical form, errors in declaration order."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from flowkernel import (
    AttemptRecord,
    AttemptStatus,
    Completion,
    ErrorInfo,
    ErrorKind,
    ExecutionResult,
    Flow,
    Invoke,
    Raised,
    Ref,
    Returned,
    RunOptions,
    RunStatus,
    Step,
    StepRecord,
    StepStatus,
    run_flow,
    tool,
)


class Point(BaseModel):
    x: int
    y: int


@tool
def src() -> Any:
    return None


@tool
def use(v: Any) -> Any:
    return v


@tool(output_model=Point)
def point() -> Any:
    return None


def drive(flow: Flow, outcomes: dict[str, Any], *, clock: Sequence[float], order: str = "fifo") -> ExecutionResult:
    """Run ``flow`` by hand: each step returns ``outcomes[step]`` (or raises it if it is an exception).

    ``clock`` gives (started, finished) per call in issue order; ``order`` picks which in-flight call
    completes first, so the same outcomes can arrive in different orders.
    """
    gen = run_flow(flow, {}, RunOptions("run-1"))
    times = iter(clock)
    in_flight: list[Invoke] = []
    try:
        commands = gen.send(None)
        while True:
            in_flight.extend(c for c in commands if isinstance(c, Invoke))
            command = in_flight.pop(0 if order == "fifo" else -1)
            started, finished = next(times), next(times)
            outcome = outcomes[command.step_id]
            completion: Completion
            if isinstance(outcome, BaseException):
                completion = Raised(command.call_id, ErrorInfo.from_exception(outcome), started, finished)
            else:
                completion = Returned(command.call_id, outcome, started, finished)
            commands = gen.send([completion])
    except StopIteration as stop:
        result: ExecutionResult = stop.value
        return result


def mixed_flow() -> Flow:
    return Flow(
        name="mixed",
        version="3",
        steps=[
            Step(id="a", tool=src),
            Step(id="b", tool=use, arguments={"v": Ref("a", "rows[*].id")}),
            Step(id="bad", tool=src),
            Step(id="after_bad", tool=use, arguments={"v": Ref("bad")}),
            Step(id="c", tool=use, arguments={"v": {"nested": [Ref("a", "name"), None, True, 1.5]}}),
        ],
    )


MIXED_OUTCOMES = {
    "a": {"rows": [{"id": 1}, {"id": 2}], "name": "ünïcode"},
    "b": [1, 2],
    "bad": ValueError("boom"),
    "c": {"nested": ["ünïcode", None, True, 1.5]},
}


def test_json_round_trip_is_equal_for_json_native_outputs() -> None:
    result = drive(mixed_flow(), MIXED_OUTCOMES, clock=[0.5 * k for k in range(20)])
    assert result.status is RunStatus.FAILED
    text = result.to_json()
    back = ExecutionResult.from_json(text)
    assert back == result
    assert back.step("bad").error == ErrorInfo(ErrorKind.TOOL, "ValueError", "boom", "bad")
    assert back.step("after_bad").status is StepStatus.SKIPPED
    assert back.step("after_bad").reason == "dependency 'bad' failed"
    assert isinstance(back.steps[0], StepRecord)
    assert isinstance(back.steps[0].attempts[0], AttemptRecord)
    assert back.status is RunStatus.FAILED
    assert ExecutionResult.from_json(text.encode()) == result
    assert json.loads(result.to_json(indent=2)) == json.loads(text)


def test_json_round_trip_of_a_hand_built_result_with_every_status() -> None:
    error = ErrorInfo(ErrorKind.OUTPUT_VALIDATION, "ValidationError", "bad output", "f")
    result = ExecutionResult(
        run_id="r",
        flow_name="f",
        flow_version="1",
        status=RunStatus.CANCELLED,
        outputs={"x": {"k": [1, "2", None]}},
        steps=(
            StepRecord(
                "ok", StepStatus.SUCCEEDED, {"a": 1}, [1], None, (AttemptRecord(1, AttemptStatus.SUCCEEDED, 1.0, 2.0),)
            ),
            StepRecord(
                "f", StepStatus.FAILED, {}, None, error, (AttemptRecord(1, AttemptStatus.FAILED, 2.0, 3.5, error),)
            ),
            StepRecord("s", StepStatus.SKIPPED, reason="dependency 'f' failed"),
            StepRecord("c", StepStatus.CANCELLED, {"a": 2}, None, None, (AttemptRecord(1, AttemptStatus.CANCELLED),)),
        ),
        reason="cancelled: KeyboardInterrupt in the caller",
    )
    assert ExecutionResult.from_json(result.to_json()) == result


def test_to_json_writes_non_json_values_as_their_repr() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    flow = Flow(name="f", steps=[Step(id="a", tool=src)])
    result = drive(flow, {"a": Opaque()}, clock=[0.0, 1.0])
    assert json.loads(result.to_json())["steps"][0]["output"] == "<opaque>"
    assert result.canonical()["outputs"] == {"a": "<opaque>"}


def test_canonical_drops_only_the_timing_fields() -> None:
    result = drive(mixed_flow(), MIXED_OUTCOMES, clock=[float(k) for k in range(20)])
    full = json.loads(result.to_json())
    for step in full["steps"]:
        for attempt in step["attempts"]:
            assert "started" in attempt
            assert "finished" in attempt
            del attempt["started"], attempt["finished"]
    canonical = result.canonical()
    assert canonical == full
    assert json.loads(json.dumps(canonical)) == canonical


def test_canonical_is_equal_across_runs_with_different_timings_and_orders() -> None:
    first = drive(mixed_flow(), MIXED_OUTCOMES, clock=[float(k) for k in range(20)], order="fifo")
    second = drive(mixed_flow(), MIXED_OUTCOMES, clock=[100.0 + 3 * k for k in range(20)], order="lifo")
    assert first.to_dict() != second.to_dict()  # the timings differ
    assert first.canonical() == second.canonical()
    assert first.step("a").attempts[0].started != second.step("a").attempts[0].started


def test_pydantic_model_outputs_become_dicts_in_canonical() -> None:
    flow = Flow(name="f", steps=[Step(id="p", tool=point), Step(id="q", tool=use, arguments={"v": Ref("p")})])
    result = drive(flow, {"p": {"x": 1, "y": "2"}, "q": Point(x=5, y=6)}, clock=[0.0, 1.0, 2.0, 3.0])
    assert result.step("p").output == Point(x=1, y=2)
    canonical = result.canonical()
    assert canonical["steps"][0]["output"] == {"x": 1, "y": 2}
    assert canonical["steps"][1]["output"] == {"x": 5, "y": 6}
    assert canonical["steps"][1]["input"] == {"v": {"x": 1, "y": 2}}
    assert canonical["outputs"] == {"q": {"x": 5, "y": 6}}
    assert canonical["status"] == "succeeded"
    json.dumps(canonical)


def test_errors_are_in_declaration_order_not_completion_order() -> None:
    flow = Flow(name="f", steps=[Step(id=name, tool=src) for name in ("first", "ok", "second", "third")])
    outcomes = {"first": KeyError("k1"), "ok": 1, "second": ValueError("v2"), "third": OSError("o3")}
    result = drive(flow, outcomes, clock=[float(k) for k in range(8)], order="lifo")  # third completes first
    assert [e.step for e in result.errors] == ["first", "second", "third"]
    assert [e.type for e in result.errors] == ["KeyError", "ValueError", "OSError"]
    assert [s.id for s in result.steps] == ["first", "ok", "second", "third"]


def test_step_lookup() -> None:
    result = drive(Flow(name="f", steps=[Step(id="a", tool=src)]), {"a": 1}, clock=[0.0, 1.0])
    assert result.step("a").output == 1
    with pytest.raises(KeyError):
        result.step("zzz")


def test_error_info_from_exception_names_builtins_briefly_and_others_fully() -> None:
    class Custom(Exception):
        pass

    assert ErrorInfo.from_exception(ValueError("v")) == ErrorInfo(ErrorKind.TOOL, "ValueError", "v")
    custom = ErrorInfo.from_exception(Custom("c"), ErrorKind.DRIVER)
    assert custom.kind is ErrorKind.DRIVER
    assert custom.type == f"{__name__}.{Custom.__qualname__}"
    assert custom.for_step("s") == ErrorInfo(ErrorKind.DRIVER, custom.type, "c", "s")


def test_result_records_are_immutable() -> None:
    result = drive(Flow(name="f", steps=[Step(id="a", tool=src)]), {"a": 1}, clock=[0.0, 1.0])
    with pytest.raises(AttributeError):
        result.status = RunStatus.FAILED  # type: ignore[misc]
    with pytest.raises(AttributeError):
        result.steps[0].status = StepStatus.FAILED  # type: ignore[misc]
