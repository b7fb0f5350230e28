"""Runs inside runs, driven by hand with exact commands: sub-flow steps (prefixed call and step ids,
completions routed back, the outputs as the step's output, failures and error policies) and map steps
(the concurrency limit, prefixed retries and timeouts, element order, empty and non-list sources,
tolerated and failing elements); stops, deadlines and fail_fast reaching into children; protocol errors."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from flowkernel import (
    AttemptRecord,
    AttemptStatus,
    Cancel,
    Cancelled,
    ErrorInfo,
    ErrorKind,
    ExecutionResult,
    Flow,
    Input,
    Invoke,
    Item,
    ProtocolError,
    Ref,
    RunOptions,
    RunStatus,
    StartTimer,
    Step,
    StepStatus,
    StopRun,
    TimerFired,
    run_flow,
    tool,
)
from flowkernel.model import Fallback, RetryPolicy
from flowkernel.model.retry import jitter_unit
from flowkernel.model.step import holds_item

from .support import RUN_ID, backup, echo, fail, finish, invoke, ok, start, statuses


def ended_at_once(flow: Flow, inputs: dict[str, Any] | None = None, **options: Any) -> ExecutionResult:
    kernel = run_flow(flow, inputs, RunOptions(RUN_ID, **options))
    with pytest.raises(StopIteration) as stop:
        kernel.send(None)  # type: ignore[arg-type]
    return stop.value.value  # type: ignore[no-any-return]


CHILD = Flow(
    name="child",
    steps=[
        Step(id="a", tool=echo, arguments={"x": Input("p")}),
        Step(id="b", tool=echo, arguments={"x": Input("q")}),
        Step(id="c", tool=echo, arguments={"x": Ref("a"), "y": Ref("b")}),
    ],
    outputs={"a": Ref("a"), "c": Ref("c")},
)


def with_child(**step: Any) -> Flow:
    """``s`` runs CHILD with inputs (p=Input("v"), q=2); ``t`` reads its output."""
    return Flow(
        name="parent",
        steps=[
            Step(id="s", flow=CHILD, arguments={"p": Input("v"), "q": 2}, **step),
            Step(id="t", tool=echo, arguments={"x": Ref("s")}),
        ],
    )


def mapped(source: Any = None, **step: Any) -> Flow:
    """``m`` maps echo over the input ``xs``; ``after`` reads its output."""
    return Flow(
        name="f",
        steps=[
            Step(id="m", tool=echo, map=source or Input("xs"), arguments={"x": Item()}, **step),
            Step(id="after", tool=echo, arguments={"x": Ref("m")}),
        ],
    )


# ---- sub-flow steps ----------------------------------------------------------------------------


def test_a_sub_flow_runs_with_prefixed_call_and_step_ids_and_its_outputs_become_the_step_output() -> None:
    kernel, first = start(with_child(), {"v": "V"})
    assert first == [invoke("s/a@1", {"x": "V"}), invoke("s/b@1", {"x": 2})]
    assert kernel.send([ok("s/b@1", "B")]) == []
    assert kernel.send([ok("s/a@1", "A")]) == [invoke("s/c@1", {"x": "A", "y": "B"})]
    assert kernel.send([ok("s/c@1", "C")]) == [invoke("t@1", {"x": {"a": "A", "c": "C"}})]
    result = finish(kernel, [ok("t@1", "T")])
    assert result.status == RunStatus.SUCCEEDED
    record = result.step("s")
    assert record.status == StepStatus.SUCCEEDED
    assert record.input == {"p": "V", "q": 2}
    assert record.output == {"a": "A", "c": "C"}
    assert record.attempts == (AttemptRecord(1, AttemptStatus.SUCCEEDED),)
    nested = record.subflow
    assert nested is not None
    assert (nested.run_id, nested.flow_name, nested.status) == ("run-1/s", "child", RunStatus.SUCCEEDED)
    assert nested.outputs == {"a": "A", "c": "C"}
    assert [(s.id, s.input, s.output) for s in nested.steps] == [
        ("a", {"x": "V"}, "A"),
        ("b", {"x": 2}, "B"),
        ("c", {"x": "A", "y": "B"}, "C"),
    ]
    assert result.step("t").subflow is None


def test_sub_flows_nest_with_one_prefix_per_level_and_completions_find_their_way_down() -> None:
    leaf = Flow(name="leaf", steps=[Step(id="a", tool=echo, arguments={"x": Input("p")})])
    middle = Flow(
        name="middle",
        steps=[Step(id="inner", flow=leaf, arguments={"p": Input("p")}), Step(id="b", tool=echo)],
    )
    top = Flow(name="top", steps=[Step(id="outer", flow=middle, arguments={"p": 7}), Step(id="c", tool=echo)])
    kernel, first = start(top)
    assert first == [invoke("outer/inner/a@1", {"x": 7}), invoke("outer/b@1", {}), invoke("c@1", {})]
    assert kernel.send([ok("outer/inner/a@1", "deep"), ok("c@1")]) == []
    result = finish(kernel, [ok("outer/b@1", "mid")])
    assert result.outputs == {"outer": {"inner": {"a": "deep"}, "b": "mid"}, "c": "v"}
    outer = result.step("outer").subflow
    assert outer is not None
    inner = outer.step("inner").subflow
    assert inner is not None
    assert (inner.run_id, inner.outputs) == ("run-1/outer/inner", {"a": "deep"})


def test_a_failing_sub_flow_fails_its_step_with_its_first_failing_step_in_declaration_order() -> None:
    kernel, _ = start(with_child(), {"v": "V"})
    # b fails first, then a: the step's error is a's (declared first), whatever the arrival order.
    assert kernel.send([fail("s/b@1", "KeyError", "b broke")]) == []
    result = finish(kernel, [fail("s/a@1", message="a broke")])
    assert result.status == RunStatus.FAILED
    error = ErrorInfo(ErrorKind.TOOL, "ValueError", "step 'a' failed: a broke", "s")
    record = result.step("s")
    assert (record.status, record.error, record.output) == (StepStatus.FAILED, error, None)
    assert record.attempts == (AttemptRecord(1, AttemptStatus.FAILED, None, None, error),)
    assert record.subflow is not None
    assert statuses(record.subflow) == {"a": "failed", "b": "failed", "c": "skipped"}
    assert result.step("t").status == StepStatus.SKIPPED
    assert result.step("t").reason == "dependency 's' failed"
    assert result.errors == (error,)


def test_a_failing_sub_flow_step_with_a_fallback_value_succeeds_with_it() -> None:
    kernel, _ = start(with_child(on_error=Fallback(value={"c": 0})), {"v": "V"})
    assert kernel.send([ok("s/a@1")]) == []
    assert kernel.send([fail("s/b@1")]) == [invoke("t@1", {"x": {"c": 0}})]
    result = finish(kernel, [ok("t@1")])
    assert result.status == RunStatus.SUCCEEDED
    record = result.step("s")
    assert (record.status, record.output, record.fallback) == (StepStatus.SUCCEEDED, {"c": 0}, True)
    assert record.error == ErrorInfo(ErrorKind.TOOL, "ValueError", "step 'b' failed: boom", "s")
    assert record.subflow is not None
    assert record.subflow.status == RunStatus.FAILED


def test_a_failing_sub_flow_step_with_a_fallback_tool_calls_it_with_the_sub_flow_inputs() -> None:
    kernel, _ = start(with_child(on_error=Fallback(tool=backup)), {"v": "V"})
    kernel.send([ok("s/a@1")])
    assert kernel.send([fail("s/b@1")]) == [Invoke("s@fallback", "s", backup, {"p": "V", "q": 2}, 1, RUN_ID)]
    assert kernel.send([ok("s@fallback", "plan b")]) == [invoke("t@1", {"x": "plan b"})]
    result = finish(kernel, [ok("t@1")])
    assert (result.step("s").output, result.step("s").fallback) == ("plan b", True)


def test_a_failing_sub_flow_step_with_continue_is_tolerated() -> None:
    kernel, _ = start(with_child(on_error="continue"), {"v": "V"})
    kernel.send([ok("s/a@1")])
    result = finish(kernel, [fail("s/b@1")])
    assert result.status == RunStatus.SUCCEEDED
    assert (result.step("s").status, result.step("s").tolerated) == (StepStatus.FAILED, True)
    assert result.step("t").status == StepStatus.SKIPPED


def test_sub_flow_inputs_that_do_not_fit_its_input_model_fail_the_step_without_a_call() -> None:
    class Inputs(BaseModel):
        n: int

    child = Flow(name="typed", input_model=Inputs, steps=[Step(id="a", tool=echo, arguments={"x": Input("n")})])
    flow = Flow(name="f", steps=[Step(id="s", flow=child, arguments={"n": Input("n")}), Step(id="o", tool=echo)])
    kernel, first = start(flow, {"n": "not a number"})
    assert first == [invoke("o@1", {})]
    result = finish(kernel, [ok("o@1")])
    record = result.step("s")
    assert record.status == StepStatus.FAILED
    assert record.error is not None
    assert (record.error.kind, record.error.type, record.error.step) == (
        ErrorKind.INPUT_VALIDATION,
        "FlowInputError",
        "s",
    )
    assert "n" in record.error.message
    assert record.subflow is None


def test_sub_flow_steps_inside_the_child_keep_their_own_retries_with_prefixed_backoff_timers() -> None:
    policy = RetryPolicy(max_attempts=2, initial_delay=0.5, jitter=0.5)
    child = Flow(name="child", steps=[Step(id="a", tool=echo, arguments={"x": 1}, retry=policy, timeout=3.0)])
    kernel, first = start(Flow(name="f", steps=[Step(id="s", flow=child)]))
    assert first == [invoke("s/a@1", {"x": 1}, timeout=3.0), StartTimer("s/a@1/timeout", 3.0)]
    delay = policy.delay(1, jitter_unit("run-1/s", "a", 1))  # the child's run id and step id
    assert kernel.send([fail("s/a@1")]) == [Cancel("s/a@1/timeout"), StartTimer("s/a@1/backoff", delay)]
    assert kernel.send([Cancelled("s/a@1/timeout")]) == []
    assert kernel.send([TimerFired("s/a@1/backoff")]) == [
        invoke("s/a@2", {"x": 1}, timeout=3.0),
        StartTimer("s/a@2/timeout", 3.0),
    ]
    assert kernel.send([TimerFired("s/a@2/timeout")]) == [Cancel("s/a@2")]
    result = finish(kernel, [Cancelled("s/a@2")])
    assert result.step("s").error == ErrorInfo(
        ErrorKind.TIMEOUT, "TimeoutError", "step 'a' failed: attempt 2 timed out after 3 s", "s"
    )


# ---- map steps ---------------------------------------------------------------------------------


def test_a_map_step_with_max_concurrency_1_runs_one_element_at_a_time_in_element_order() -> None:
    flow = Flow(
        name="f",
        steps=[
            Step(id="rows", tool=echo),
            Step(id="k", tool=echo),
            Step(
                id="m",
                tool=echo,
                map=Ref("rows", "items"),
                arguments={"x": Item("v"), "y": Ref("k")},
                max_concurrency=1,
            ),
        ],
    )
    kernel, first = start(flow)
    assert first == [invoke("rows@1", {}), invoke("k@1", {})]
    rows = {"items": [{"v": 10}, {"v": 11}, {"v": 12}]}
    assert kernel.send([ok("rows@1", rows), ok("k@1", "K")]) == [invoke("m/item0@1", {"x": 10, "y": "K"})]
    assert kernel.send([ok("m/item0@1", 0)]) == [invoke("m/item1@1", {"x": 11, "y": "K"})]
    assert kernel.send([ok("m/item1@1", 1)]) == [invoke("m/item2@1", {"x": 12, "y": "K"})]
    result = finish(kernel, [ok("m/item2@1", 2)])
    record = result.step("m")
    assert (record.status, record.output, record.input) == (StepStatus.SUCCEEDED, [0, 1, 2], {"y": "K"})
    assert record.attempts == (AttemptRecord(1, AttemptStatus.SUCCEEDED),)
    nested = record.subflow
    assert nested is not None
    assert (nested.run_id, nested.flow_name) == ("run-1/m", "f.m")
    assert [(s.id, s.input, s.output) for s in nested.steps] == [
        ("item0", {"x": 10, "y": "K"}, 0),
        ("item1", {"x": 11, "y": "K"}, 1),
        ("item2", {"x": 12, "y": "K"}, 2),
    ]


def test_a_map_step_bounds_its_elements_by_its_own_limit() -> None:
    kernel, first = start(mapped(max_concurrency=2), {"xs": ["a", "b", "c", "d"]})
    assert first == [invoke("m/item0@1", {"x": "a"}), invoke("m/item1@1", {"x": "b"})]
    assert kernel.send([ok("m/item1@1")]) == [invoke("m/item2@1", {"x": "c"})]
    assert kernel.send([ok("m/item2@1")]) == [invoke("m/item3@1", {"x": "d"})]
    assert kernel.send([ok("m/item3@1")]) == []


def test_the_run_limit_bounds_every_call_of_the_run_sub_runs_included() -> None:
    """Issue 10.16: a run limit of 1 with two map steps and a plain step had 5 calls in flight."""
    flow = Flow(
        name="f",
        steps=[
            Step(id="m", tool=echo, map=Input("xs"), arguments={"x": Item()}),
            Step(id="n", tool=echo, map=Input("xs"), arguments={"x": Item()}, max_concurrency=3),
            Step(id="o", tool=echo),
        ],
    )
    kernel, first = start(flow, {"xs": [1, 2, 3]}, max_concurrency=1)
    assert first == [invoke("m/item0@1", {"x": 1})]
    assert kernel.send([ok("m/item0@1")]) == [invoke("m/item1@1", {"x": 2})]  # a free slot: declaration order
    assert kernel.send([ok("m/item1@1")]) == [invoke("m/item2@1", {"x": 3})]
    assert kernel.send([ok("m/item2@1")]) == [invoke("n/item0@1", {"x": 1})]
    assert kernel.send([ok("n/item0@1")]) == [invoke("n/item1@1", {"x": 2})]
    assert kernel.send([ok("n/item1@1")]) == [invoke("n/item2@1", {"x": 3})]
    assert kernel.send([ok("n/item2@1")]) == [invoke("o@1", {})]
    assert finish(kernel, [ok("o@1")]).status == "succeeded"


def test_a_steps_own_limit_nests_inside_the_run_limit() -> None:
    flow = Flow(
        name="f",
        steps=[
            Step(id="n", tool=echo, map=Input("xs"), arguments={"x": Item()}, max_concurrency=2),
            Step(id="o", tool=echo),
        ],
    )
    kernel, first = start(flow, {"xs": [1, 2, 3, 4]}, max_concurrency=3)
    assert first == [invoke("n/item0@1", {"x": 1}), invoke("n/item1@1", {"x": 2}), invoke("o@1", {})]
    assert kernel.send([ok("o@1")]) == []  # the map is at its own limit of 2
    assert kernel.send([ok("n/item0@1")]) == [invoke("n/item2@1", {"x": 3})]


def test_the_output_is_in_element_order_whatever_order_the_elements_finish_in() -> None:
    kernel, first = start(mapped(), {"xs": ["a", "b", "c"]})
    assert first == [invoke("m/item0@1", {"x": "a"}), invoke("m/item1@1", {"x": "b"}), invoke("m/item2@1", {"x": "c"})]
    assert kernel.send([ok("m/item2@1", "C")]) == []
    assert kernel.send([ok("m/item0@1", "A")]) == []
    assert kernel.send([ok("m/item1@1", "B")]) == [invoke("after@1", {"x": ["A", "B", "C"]})]
    result = finish(kernel, [ok("after@1")])
    assert result.step("m").output == ["A", "B", "C"]


def test_map_elements_are_retried_with_prefixed_backoff_timers_and_take_slots_in_element_order() -> None:
    policy = RetryPolicy(max_attempts=2, initial_delay=0.5, jitter=0.5)
    kernel, first = start(mapped(retry=policy, max_concurrency=2), {"xs": [0, 1, 2]})
    assert first == [invoke("m/item0@1", {"x": 0}), invoke("m/item1@1", {"x": 1})]
    delay = policy.delay(1, jitter_unit("run-1/m", "item0", 1))
    assert delay != 0.5
    assert kernel.send([fail("m/item0@1")]) == [
        StartTimer("m/item0@1/backoff", delay),
        invoke("m/item2@1", {"x": 2}),
    ]
    assert kernel.send([TimerFired("m/item0@1/backoff")]) == []  # both slots are taken
    assert kernel.send([ok("m/item2@1", 2)]) == [invoke("m/item0@2", {"x": 0})]
    assert kernel.send([ok("m/item0@2", 0)]) == []
    assert kernel.send([ok("m/item1@1", 1)]) == [invoke("after@1", {"x": [0, 1, 2]})]
    result = finish(kernel, [ok("after@1")])
    element = result.step("m").subflow.step("item0")  # type: ignore[union-attr]
    assert [(a.status, a.retry_in) for a in element.attempts] == [
        (AttemptStatus.FAILED, delay),
        (AttemptStatus.SUCCEEDED, None),
    ]


def test_map_elements_carry_the_step_timeout_with_prefixed_timers() -> None:
    kernel, first = start(mapped(timeout=2.0, on_error="continue"), {"xs": [0, 1]})
    assert first == [
        invoke("m/item0@1", {"x": 0}, timeout=2.0),
        StartTimer("m/item0@1/timeout", 2.0),
        invoke("m/item1@1", {"x": 1}, timeout=2.0),
        StartTimer("m/item1@1/timeout", 2.0),
    ]
    assert kernel.send([ok("m/item1@1", 1)]) == [Cancel("m/item1@1/timeout")]
    assert kernel.send([Cancelled("m/item1@1/timeout"), TimerFired("m/item0@1/timeout")]) == [Cancel("m/item0@1")]
    assert kernel.send([Cancelled("m/item0@1")]) == [invoke("after@1", {"x": [None, 1]})]


def test_an_empty_list_gives_an_empty_output_at_once() -> None:
    kernel, first = start(mapped(), {"xs": []})
    assert first == [invoke("after@1", {"x": []})]
    result = finish(kernel, [ok("after@1")])
    record = result.step("m")
    assert (record.status, record.output) == (StepStatus.SUCCEEDED, [])
    assert result.status == RunStatus.SUCCEEDED


def test_a_source_that_is_not_a_list_fails_the_step_with_an_argument_error() -> None:
    result = ended_at_once(mapped(), {"xs": "abc"})
    assert result.status == RunStatus.FAILED
    record = result.step("m")
    assert record.status == StepStatus.FAILED
    assert record.error == ErrorInfo(ErrorKind.ARGUMENT, "TypeError", "map= gave str, not a list", "m")
    assert record.subflow is None
    assert result.step("after").reason == "dependency 'm' failed"


@pytest.mark.parametrize("policy", ["continue", Fallback(value=[])], ids=["continue", "fallback"])
def test_a_source_that_is_not_a_list_is_subject_to_the_step_error_policy(policy: Any) -> None:
    result = ended_at_once(Flow(name="f", steps=[mapped().steps[0].model_copy(update={"on_error": policy})]), {"xs": 5})
    assert result.status == RunStatus.SUCCEEDED
    assert result.step("m").error == ErrorInfo(ErrorKind.ARGUMENT, "TypeError", "map= gave int, not a list", "m")


def test_tolerated_element_failures_leave_none_in_their_place() -> None:
    kernel, _ = start(mapped(on_error="continue"), {"xs": [0, 1, 2]})
    assert kernel.send([fail("m/item1@1")]) == []
    assert kernel.send([ok("m/item2@1", 2), ok("m/item0@1", 0)]) == [invoke("after@1", {"x": [0, None, 2]})]
    result = finish(kernel, [ok("after@1")])
    assert result.status == RunStatus.SUCCEEDED
    record = result.step("m")
    assert (record.status, record.output, record.error) == (StepStatus.SUCCEEDED, [0, None, 2], None)
    nested = record.subflow
    assert nested is not None
    assert statuses(nested) == {"item0": "succeeded", "item1": "failed", "item2": "succeeded"}
    assert nested.step("item1").tolerated


def test_element_fallback_values_take_their_place() -> None:
    kernel, _ = start(mapped(on_error=Fallback(value="dflt")), {"xs": [0, 1]})
    assert kernel.send([fail("m/item0@1"), ok("m/item1@1", 1)]) == [invoke("after@1", {"x": ["dflt", 1]})]


def test_element_fallback_tools_are_called_with_prefixed_ids() -> None:
    kernel, _ = start(mapped(on_error=Fallback(tool=backup)), {"xs": [0, 1]})
    assert kernel.send([fail("m/item1@1")]) == [Invoke("m/item1@fallback", "m/item1", backup, {"x": 1}, 1, RUN_ID)]
    assert kernel.send([ok("m/item1@fallback", "b"), ok("m/item0@1", 0)]) == [invoke("after@1", {"x": [0, "b"]})]


def test_a_failing_element_fails_the_step_naming_the_first_failing_element() -> None:
    kernel, _ = start(mapped(), {"xs": [0, 1, 2, 3]})
    assert kernel.send([fail("m/item3@1", "KeyError", "three")]) == []
    assert kernel.send([ok("m/item0@1")]) == []
    result = finish(kernel, [fail("m/item1@1", message="one"), ok("m/item2@1")])
    assert result.status == RunStatus.FAILED
    error = ErrorInfo(ErrorKind.TOOL, "ValueError", "element 1 failed: one", "m")
    record = result.step("m")
    assert (record.status, record.error, record.output) == (StepStatus.FAILED, error, None)
    assert record.attempts == (AttemptRecord(1, AttemptStatus.FAILED, None, None, error),)
    assert statuses(record.subflow) == {
        "item0": "succeeded",
        "item1": "failed",
        "item2": "succeeded",
        "item3": "failed",
    }
    assert result.step("after").status == StepStatus.SKIPPED


def test_a_failing_element_names_its_element_and_then_its_sub_flow_step() -> None:
    child = Flow(name="child", steps=[Step(id="a", tool=echo, arguments={"x": Input("p"), "y": Input("q")})])
    flow = Flow(name="f", steps=[Step(id="m", flow=child, map=Input("xs"), arguments={"p": Item(), "q": Input("k")})])
    kernel, first = start(flow, {"xs": [1, 2], "k": "K"})
    assert first == [invoke("m/item0/a@1", {"x": 1, "y": "K"}), invoke("m/item1/a@1", {"x": 2, "y": "K"})]
    assert kernel.send([ok("m/item1/a@1", "two")]) == []
    result = finish(kernel, [fail("m/item0/a@1", message="first")])
    assert result.step("m").error == ErrorInfo(
        ErrorKind.TOOL, "ValueError", "element 0 failed: step 'a' failed: first", "m"
    )
    assert result.step("m").subflow.step("item1").output == {"a": "two"}  # type: ignore[union-attr]


def test_a_map_of_sub_flows_gives_the_list_of_their_outputs() -> None:
    child = Flow(name="child", steps=[Step(id="a", tool=echo, arguments={"x": Input("p")})])
    flow = Flow(name="f", steps=[Step(id="m", flow=child, map=Input("xs"), arguments={"p": Item("n")})])
    kernel, first = start(flow, {"xs": [{"n": 5}, {"n": 6}]})
    assert first == [invoke("m/item0/a@1", {"x": 5}), invoke("m/item1/a@1", {"x": 6})]
    assert kernel.send([ok("m/item1/a@1", 60)]) == []
    result = finish(kernel, [ok("m/item0/a@1", 50)])
    assert result.outputs == {"m": [{"a": 50}, {"a": 60}]}


def test_a_map_step_over_a_tool_with_an_input_model_validates_each_element() -> None:
    class Numbers(BaseModel):
        x: int
        scale: int = 1

    typed = tool(name="typed", input_model=Numbers)(lambda x, scale: x * scale)
    flow = Flow(name="f", steps=[Step(id="m", tool=typed, map=Input("xs"), arguments={"x": Item(), "scale": 10})])
    kernel, first = start(flow, {"xs": ["1", "oops"]})
    # Each element is validated on its own: "1" becomes 1; "oops" fails without a call.
    assert first == [Invoke("m/item0@1", "m/item0", typed, {"x": 1, "scale": 10}, 1, RUN_ID)]
    result = finish(kernel, [ok("m/item0@1", 10)])
    error = result.step("m").error
    assert error is not None
    assert (error.kind, error.message.startswith("element 1 failed: ")) == (ErrorKind.INPUT_VALIDATION, True)


# ---- stops reach into children -----------------------------------------------------------------


def test_a_stop_while_a_child_runs_cancels_its_calls_and_timers_and_keeps_a_partial_nested_result() -> None:
    policy = RetryPolicy(max_attempts=2, initial_delay=1.0)
    child = Flow(
        name="child",
        steps=[
            Step(id="a", tool=echo, arguments={"x": 1}),
            Step(id="b", tool=echo, arguments={"x": 2}, retry=policy),
            Step(id="c", tool=echo, arguments={"x": 3}),
            Step(id="d", tool=echo, arguments={"x": Ref("a")}),
        ],
    )
    flow = Flow(
        name="f",
        steps=[Step(id="s", flow=child), Step(id="o", tool=echo), Step(id="t", tool=echo, arguments={"x": Ref("s")})],
    )
    kernel, first = start(flow)
    assert first == [invoke("s/a@1", {"x": 1}), invoke("s/b@1", {"x": 2}), invoke("s/c@1", {"x": 3}), invoke("o@1", {})]
    assert kernel.send([ok("s/c@1", "C"), fail("s/b@1")]) == [StartTimer("s/b@1/backoff", 1.0)]
    assert kernel.send([StopRun("user")]) == [Cancel("o@1"), Cancel("s/a@1"), Cancel("s/b@1/backoff")]
    assert kernel.send([Cancelled("o@1"), Cancelled("s/b@1/backoff")]) == []
    result = finish(kernel, [Cancelled("s/a@1")])
    assert (result.status, result.reason) == (RunStatus.CANCELLED, "cancelled: user")
    assert statuses(result) == {"s": "cancelled", "o": "cancelled", "t": "cancelled"}
    record = result.step("s")
    assert (record.output, record.error) == (None, None)
    nested = record.subflow
    assert nested is not None
    assert (nested.status, nested.reason) == (RunStatus.CANCELLED, "cancelled: user")
    assert statuses(nested) == {"a": "cancelled", "b": "cancelled", "c": "succeeded", "d": "cancelled"}
    assert nested.step("c").output == "C"
    assert [a.status for a in nested.step("b").attempts] == [AttemptStatus.FAILED]


def test_a_stop_cancels_every_running_element_of_a_map_step() -> None:
    kernel, _ = start(mapped(max_concurrency=2), {"xs": [0, 1, 2]})
    assert kernel.send([ok("m/item0@1")]) == [invoke("m/item2@1", {"x": 2})]
    assert kernel.send([StopRun("enough")]) == [Cancel("m/item1@1"), Cancel("m/item2@1")]
    # A result that raced the Cancel is kept.
    result = finish(kernel, [ok("m/item1@1", "raced"), Cancelled("m/item2@1")])
    assert result.status == RunStatus.CANCELLED
    assert result.step("m").status == StepStatus.CANCELLED
    nested = result.step("m").subflow
    assert statuses(nested) == {"item0": "succeeded", "item1": "succeeded", "item2": "cancelled"}


def test_the_run_deadline_cancels_children_and_the_run_times_out() -> None:
    kernel, first = start(with_child(), {"v": "V"}, deadline=5.0)
    assert first == [StartTimer("@deadline", 5.0), invoke("s/a@1", {"x": "V"}), invoke("s/b@1", {"x": 2})]
    assert kernel.send([ok("s/a@1")]) == []
    assert kernel.send([TimerFired("@deadline")]) == [Cancel("s/b@1")]
    result = finish(kernel, [Cancelled("s/b@1")])
    assert (result.status, result.reason) == (RunStatus.TIMED_OUT, "deadline of 5 s exceeded")
    assert result.step("s").status == StepStatus.CANCELLED
    nested = result.step("s").subflow
    assert nested is not None
    assert (nested.status, nested.reason) == (RunStatus.CANCELLED, "deadline of 5 s exceeded")


def test_the_deadline_timer_stays_while_only_a_child_is_running() -> None:
    kernel, _ = start(with_child(), {"v": "V"}, deadline=5.0)
    assert kernel.send([ok("s/a@1"), ok("s/b@1")]) == [invoke("s/c@1", {"x": "v", "y": "v"})]
    assert kernel.send([ok("s/c@1")]) == [invoke("t@1", {"x": {"a": "v", "c": "v"}})]
    assert kernel.send([ok("t@1")]) == [Cancel("@deadline")]


def test_fail_fast_after_another_step_fails_cancels_the_running_child() -> None:
    flow = Flow(name="f", steps=[Step(id="s", flow=CHILD, arguments={"p": 1, "q": 2}), Step(id="x", tool=echo)])
    kernel, _ = start(flow, fail_fast=True)
    assert kernel.send([fail("x@1")]) == [Cancel("s/a@1"), Cancel("s/b@1")]
    result = finish(kernel, [Cancelled("s/a@1"), Cancelled("s/b@1")])
    assert result.status == RunStatus.FAILED
    assert result.reason == "stopped after step 'x' failed (fail_fast)"
    assert statuses(result) == {"s": "cancelled", "x": "failed"}
    assert result.step("s").subflow.status == RunStatus.CANCELLED  # type: ignore[union-attr]


def test_fail_fast_stops_the_run_when_a_map_element_fails() -> None:
    flow = Flow(name="f", steps=[mapped().steps[0], Step(id="o", tool=echo)])
    kernel, _ = start(flow, {"xs": [0, 1, 2]}, fail_fast=True)
    commands = kernel.send([fail("m/item0@1")])
    assert sorted(commands) == [Cancel("m/item1@1"), Cancel("m/item2@1"), Cancel("o@1")]


# ---- protocol errors ---------------------------------------------------------------------------


def test_a_completion_for_an_unknown_id_under_a_running_child_is_a_protocol_error() -> None:
    kernel, _ = start(mapped(), {"xs": [0]})
    with pytest.raises(ProtocolError, match="never issued"):
        kernel.send([ok("m/item5@1")])


def test_a_completion_under_a_prefix_that_is_no_child_is_a_protocol_error() -> None:
    kernel, _ = start(mapped(), {"xs": [0]})
    with pytest.raises(ProtocolError, match=r"'zz/item0@1'.*never issued"):
        kernel.send([ok("zz/item0@1")])


def test_a_child_call_completed_again_after_its_child_finished_is_a_protocol_error() -> None:
    kernel, _ = start(Flow(name="f", steps=[mapped().steps[0], Step(id="o", tool=echo)]), {"xs": [0]})
    assert kernel.send([ok("m/item0@1")]) == []
    with pytest.raises(ProtocolError):
        kernel.send([ok("m/item0@1")])


def test_a_child_call_completed_twice_while_its_child_runs_is_a_protocol_error() -> None:
    kernel, _ = start(mapped(), {"xs": [0, 1]})
    assert kernel.send([ok("m/item0@1")]) == []
    with pytest.raises(ProtocolError, match="twice"):
        kernel.send([ok("m/item0@1")])


def test_an_empty_batch_while_only_a_child_runs_is_a_protocol_error() -> None:
    kernel, _ = start(mapped(), {"xs": [0]})
    with pytest.raises(ProtocolError, match="a driver must wait for at least one"):
        kernel.send([])


def test_a_protocol_error_under_a_child_names_the_call_id_the_driver_sent() -> None:
    kernel, _ = start(mapped(), {"xs": [0]})
    with pytest.raises(ProtocolError, match="'m/item5@1'"):
        kernel.send([ok("m/item5@1")])


def test_the_empty_batch_error_counts_the_calls_of_children() -> None:
    kernel, _ = start(mapped(), {"xs": [0]})
    with pytest.raises(ProtocolError, match=r"1 call\(s\) are outstanding \(m/item0@1\)"):
        kernel.send([])


# ---- the map fast path agrees with the definition ---------------------------------------------------


@tool
def scaled(x: Any = None, k: Any = None, scale: Any = 1) -> Any:
    if x == "bad":
        raise ValueError(f"bad element (k={k})")
    return {"x": x, "k": k, "scale": scale}


class Point(BaseModel):
    x: int


@tool(input_model=Point)
def modelled(x: int) -> int:
    return x * 2


AGREEING_MAPS = [
    Step(id="m", tool=scaled, map=Input("xs"), arguments={"x": Item()}),
    Step(
        id="m",
        tool=scaled,
        map=Ref("rows", "items"),
        arguments={"x": Item("v", default=0), "k": {"deep": [Item("w"), 1]}, "scale": Ref("rows", "scale")},
        retry=RetryPolicy(max_attempts=2, initial_delay=0.5, jitter=0.3),
        timeout=30,
        on_error="continue",
    ),
    Step(id="m", tool=scaled, map=Input("xs"), arguments={"x": Item(), "k": [1, 2]}, on_error=Fallback(value=-1)),
    Step(id="m", tool=modelled, map=Input("xs"), arguments={"x": Item()}, max_concurrency=2),
    Step(id="m", flow=CHILD, map=Input("xs"), arguments={"p": Item(), "q": Input("k")}),
]
ITEMS: list[Any] = [1, {"v": 2, "w": 3}, {"w": None}, "bad", None, [4]]


def _agreeing_parent(map_step: Step) -> Flow:
    rows = Step(id="rows", tool=echo)
    return Flow(name="p", steps=[rows, map_step, Step(id="after", tool=echo, arguments={"x": Ref("m")})])


@pytest.mark.parametrize("map_step", AGREEING_MAPS, ids=lambda s: f"{s.target_name}-{sorted(s.arguments)}")
def test_the_map_fast_path_compiles_the_plan_the_definition_does(map_step: Step) -> None:
    from flowkernel.kernel.children import element_inputs, element_plan, map_flow
    from flowkernel.model.refs import PathError

    parent = _agreeing_parent(map_step)
    outer = {name: f"resolved {name}" for name, value in map_step.arguments.items() if not holds_item(value)}
    general_flow, general_inputs = map_flow(parent, map_step, ITEMS, outer)
    element = parent.map_element(1)
    fast, fast_inputs = element_plan(element, ITEMS), element_inputs(outer)
    general = general_flow.plan
    assert (element.name, element.version) == (general_flow.name, general_flow.version)
    for field in ("step_ids", "deps", "dependents", "retry", "timeouts", "on_error", "conditions", "join_any"):
        assert getattr(fast, field) == getattr(general, field), field
    for field in ("map_sources", "plain", "reads_context"):
        assert getattr(fast, field) == getattr(general, field), field
    assert [(s.tool, s.flow) for s in fast.steps] == [(s.tool, s.flow) for s in general.steps]
    assert [(s.retry_policy, s.timeout_seconds, s.on_error) for s in fast.steps] == [
        (s.retry_policy, s.timeout_seconds, s.on_error) for s in general.steps
    ]
    outputs = [f"out{k}" for k in range(len(ITEMS))]
    whole = outputs.__getitem__  # what a getter of None reads: the step's whole output
    assert [(name, i, get(outputs, {}) if get else whole(i)) for name, i, get in fast.outputs] == [
        (name, i, get(outputs, {}) if get else whole(i)) for name, i, get in general.outputs
    ]

    def resolved(plan: Any, k: int, inputs: dict[str, Any]) -> Any:
        try:
            return plan.resolvers[k](outputs, inputs)
        except PathError as exc:
            return str(exc)

    for k in range(len(ITEMS)):
        assert resolved(fast, k, fast_inputs) == resolved(general, k, general_inputs), k


@pytest.mark.parametrize("map_step", AGREEING_MAPS, ids=lambda s: f"{s.target_name}-{sorted(s.arguments)}")
def test_a_map_step_runs_as_the_flow_the_definition_builds(map_step: Step) -> None:
    from flowkernel.host import call_sync
    from flowkernel.kernel.children import map_flow

    def drive_inline(kernel: Any) -> ExecutionResult:
        """Every call answered at once, in order, by calling the tool (timers fire at once)."""
        commands = kernel.send(None)
        try:
            while True:
                batch: list[Any] = []
                for command in commands:
                    if isinstance(command, Invoke):
                        batch.append(call_sync(command, lambda: 0.0))  # (no clock: timeouts never fire)
                    elif isinstance(command, StartTimer) and command.call_id.endswith("/backoff"):
                        batch.append(TimerFired(command.call_id))
                    elif isinstance(command, Cancel):
                        batch.append(Cancelled(command.call_id))
                commands = kernel.send(batch)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    parent = _agreeing_parent(map_step)
    rows = {"items": ITEMS, "scale": 3}
    inputs = {"xs": ITEMS, "k": 7} if "q" in map_step.arguments else {"xs": ITEMS}
    if isinstance(map_step.map, Ref):
        inputs = {}
        parent = Flow(name="p", steps=[Step(id="rows", tool=tool(lambda: rows, name="rows")), *parent.steps[1:]])
    whole = drive_inline(run_flow(parent, inputs, RunOptions(RUN_ID, 3)))
    fast, outer = whole.step("m").subflow, whole.step("m").input
    assert fast is not None
    assert outer is not None
    general_flow, general_inputs = map_flow(parent, parent.steps[1], ITEMS, outer)
    general = drive_inline(run_flow(general_flow, general_inputs, RunOptions(f"{RUN_ID}/m", 3)))
    assert fast.canonical() == general.canonical()
