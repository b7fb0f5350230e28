"""The kernel generator driven by hand: dispatch order, limits, failures, cancellation, protocol checks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from flowkernel import (
    Cancel,
    Cancelled,
    Command,
    Completion,
    ErrorInfo,
    ErrorKind,
    Flow,
    Input,
    Invoke,
    ProtocolError,
    Ref,
    Returned,
    Step,
    StopRun,
    TimerFired,
    tool,
)

from .support import RUN_ID, echo, fail, finish, ok, start, step


def ids(commands: list[Command]) -> list[str]:
    return [c.call_id for c in commands]


def test_independent_steps_start_together_in_declaration_order() -> None:
    flow = Flow(name="f", steps=[step("b"), step("a"), step("c", Ref("a"))])
    _, first = start(flow)
    assert ids(first) == ["b@1", "a@1"]
    assert all(isinstance(c, Invoke) and c.attempt == 1 for c in first)


def test_a_step_starts_as_soon_as_its_own_dependencies_are_done() -> None:
    # A -> C beside B -> D: C must not wait for B (no level barriers).
    flow = Flow(name="f", steps=[step("A"), step("B"), step("C", Ref("A")), step("D", Ref("B"))])
    kernel, first = start(flow)
    a, b = first
    assert ids(kernel.send([ok(a, 1)])) == ["C@1"]
    assert ids(kernel.send([ok(b, 2)])) == ["D@1"]


def test_the_concurrency_limit_holds_and_ready_steps_wait_in_declaration_order() -> None:
    flow = Flow(name="f", steps=[step(f"s{i}") for i in range(5)])
    kernel, first = start(flow, max_concurrency=2)
    assert ids(first) == ["s0@1", "s1@1"]
    assert ids(kernel.send([ok(first[1])])) == ["s2@1"]
    assert ids(kernel.send([ok(first[0])])) == ["s3@1"]


def test_arguments_are_resolved_from_outputs_inputs_and_paths() -> None:
    flow = Flow(
        name="f",
        steps=[
            step("a"),
            Step(id="b", tool=echo, arguments={"x": {"n": Ref("a", "rows[1].n"), "all": [Input("k"), 3]}}),
        ],
    )
    kernel, (a,) = start(flow, inputs={"k": "K"})
    (b,) = kernel.send([ok(a, {"rows": [{"n": 1}, {"n": 2}]})])
    assert isinstance(b, Invoke)
    assert b.arguments == {"x": {"n": 2, "all": ["K", 3]}}
    result = finish(kernel, [ok(b, "done")])
    assert result.status == "succeeded"
    assert result.outputs == {"b": "done"}
    assert result.step("b").input == {"x": {"n": 2, "all": ["K", 3]}}


def test_a_failure_prunes_only_its_dependents_and_the_run_fails_at_the_end() -> None:
    flow = Flow(
        name="f",
        steps=[step("a"), step("b"), step("c", Ref("a")), step("d", Ref("c")), step("e", Ref("b"))],
    )
    kernel, (a, b) = start(flow)
    assert ids(kernel.send([fail(a), ok(b)])) == ["e@1"]
    result = finish(kernel, [ok(Invoke("e@1", "e", echo, {}, 1, RUN_ID))])
    statuses = {s.id: s.status for s in result.steps}
    assert statuses == {"a": "failed", "b": "succeeded", "c": "skipped", "d": "skipped", "e": "succeeded"}
    assert result.status == "failed"
    assert result.step("c").reason == "dependency 'a' failed"
    assert result.step("d").reason == "dependency 'c' was skipped"
    assert [e.step for e in result.errors] == ["a"]
    assert result.step("a").attempts[0].error == ErrorInfo(ErrorKind.TOOL, "ValueError", "boom", "a")


def test_input_validation_fails_the_step_without_invoking_it() -> None:
    class Args(BaseModel):
        x: int

    typed = tool(lambda x: x, name="typed", input_model=Args)
    flow = Flow(name="f", steps=[step("a"), Step(id="b", tool=typed, arguments={"x": Ref("a")})])
    kernel, (a,) = start(flow)
    result = finish(kernel, [ok(a, "not a number")])
    record = result.step("b")
    assert record.status == "failed"
    assert record.attempts == ()
    assert record.error is not None
    assert record.error.kind == ErrorKind.INPUT_VALIDATION
    assert "x: Input should be a valid integer" in record.error.message


def test_output_validation_failure_is_a_failed_attempt() -> None:
    class Out(BaseModel):
        n: int

    typed = tool(lambda: {"n": "x"}, name="typed", output_model=Out)
    kernel, (a,) = start(Flow(name="f", steps=[Step(id="a", tool=typed)]))
    result = finish(kernel, [ok(a, {"n": "x"})])
    assert result.step("a").error.kind == ErrorKind.OUTPUT_VALIDATION  # type: ignore[union-attr]
    assert result.step("a").attempts[0].status == "failed"


def test_validated_outputs_become_the_model() -> None:
    class Out(BaseModel):
        n: int

    typed = tool(lambda: {"n": 1}, name="typed", output_model=Out)
    kernel, (a,) = start(Flow(name="f", steps=[Step(id="a", tool=typed)]))
    assert finish(kernel, [ok(a, {"n": "7"})]).outputs == {"a": Out(n=7)}


def test_a_path_that_fails_at_run_time_fails_the_step_with_an_argument_error() -> None:
    flow = Flow(name="f", steps=[step("a"), step("b", Ref("a", "length(@)"))])
    kernel, (a,) = start(flow)
    result = finish(kernel, [ok(a, 5)])
    assert result.step("b").error.kind == ErrorKind.ARGUMENT  # type: ignore[union-attr]


def test_explicit_outputs_select_with_paths_and_skip_steps_that_did_not_succeed() -> None:
    flow = Flow(
        name="f",
        steps=[step("a"), step("b")],
        outputs={"first": Ref("a", "n"), "second": Ref("b")},
    )
    kernel, (a, b) = start(flow)
    result = finish(kernel, [ok(a, {"n": 4}), fail(b)])
    assert result.outputs == {"first": 4}


def test_stopping_cancels_calls_in_flight_and_dispatches_nothing_more() -> None:
    flow = Flow(name="f", steps=[step("a"), step("b"), step("c", Ref("a"))])
    kernel, (a, _b) = start(flow)
    cancels = kernel.send([ok(a), StopRun("user")])
    assert cancels == [Cancel("b@1")]
    result = finish(kernel, [Cancelled("b@1")])
    assert result.status == "cancelled"
    assert result.reason == "cancelled: user"
    statuses = {s.id: s.status for s in result.steps}
    assert statuses == {"a": "succeeded", "b": "cancelled", "c": "cancelled"}
    assert result.step("b").attempts[0].status == "cancelled"
    assert result.step("c").reason == "the run stopped (cancelled: user)"


def test_a_call_that_returns_after_the_stop_still_counts() -> None:
    kernel, (a,) = start(Flow(name="f", steps=[step("a")]))
    assert kernel.send([StopRun("user")]) == [Cancel("a@1")]
    result = finish(kernel, [ok(a, "late")])
    assert result.status == "cancelled"
    assert result.step("a").status == "succeeded"


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([], "sent no completions while 1 call"),
        ([Returned("zz@1", 1, 0.0, 1.0)], "never issued"),
        ([Cancelled("a@1")], "does not fit it"),
        ([TimerFired("a@1")], "does not fit it"),
    ],
)
def test_protocol_violations_raise_protocol_error(batch: list[Completion], message: str) -> None:
    kernel, _ = start(Flow(name="f", steps=[step("a"), step("b", Ref("a"))]))
    with pytest.raises(ProtocolError, match=message):
        kernel.send(batch)


def test_completing_a_call_twice_is_named_as_such() -> None:
    kernel, (a,) = start(Flow(name="f", steps=[step("a"), step("b", Ref("a"))]))
    kernel.send([ok(a)])
    with pytest.raises(ProtocolError, match="completed call 'a@1' twice"):
        kernel.send([ok(a)])


def test_the_result_does_not_depend_on_how_completions_are_batched() -> None:
    flow = Flow(name="f", steps=[step("a"), step("b"), step("c", Ref("a"), after=("b",))])

    def run(batches: list[list[str]]) -> dict[str, Any]:
        kernel, commands = start(flow)
        pending = {c.call_id: c for c in commands}
        result = None
        for names in batches:
            try:
                more = kernel.send([ok(pending.pop(n), n) for n in names])
            except StopIteration as stop:
                result = stop.value
                break
            pending.update({c.call_id: c for c in more})
        assert result is not None
        return result.canonical()  # type: ignore[no-any-return]

    assert run([["a@1", "b@1"], ["c@1"]]) == run([["b@1"], ["a@1"], ["c@1"]]) == run([["a@1"], ["b@1"], ["c@1"]])
