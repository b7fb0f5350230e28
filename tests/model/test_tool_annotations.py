"""A tool's annotations are validated in runs, and a tool stays callable, typed (issue 10, item 15)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from flowkernel import ErrorKind, Flow, FlowValidationError, Input, Ref, Step, tool
from flowkernel.result import ExecutionResult
from flowkernel_sync import SyncDriver


@tool
def double(x: int) -> int:
    return x * 2


@tool(validate=False)
def double_unchecked(x: int) -> int:
    return x * 2


@tool
def liar() -> int:
    return "not a number"  # type: ignore[return-value]


@tool
def plain(x):  # type: ignore[no-untyped-def]
    return x


class Point(BaseModel):
    x: int
    y: int


@tool
def point(x: int) -> Point:
    return {"x": x, "y": "2"}  # type: ignore[return-value]


def run_one(step_tool: Any, **inputs: Any) -> ExecutionResult:
    step = Step(id="s", tool=step_tool, arguments={name: Input(name) for name in inputs})
    return SyncDriver().run(Flow(name="f", steps=[step]), inputs)


def test_an_annotated_parameter_is_validated_in_runs() -> None:
    [error] = run_one(double, x="ab").errors
    assert error.kind is ErrorKind.INPUT_VALIDATION
    assert "valid integer" in error.message
    assert run_one(double, x="4").outputs == {"s": 8}  # pydantic's lax mode, as for input models


def test_an_annotated_return_is_validated_and_stays_a_plain_value() -> None:
    [error] = run_one(liar).errors
    assert error.kind is ErrorKind.OUTPUT_VALIDATION
    assert run_one(point, x=1).outputs == {"s": Point(x=1, y=2)}  # a model annotation is the output model


def test_validation_can_be_turned_off_per_tool() -> None:
    assert double_unchecked.input_model is None
    assert double_unchecked.output_model is None
    assert run_one(double_unchecked, x="ab").outputs == {"s": "abab"}


def test_unannotated_tools_get_no_models_and_stay_on_the_fast_path() -> None:
    assert plain.input_model is None
    assert plain.output_model is None
    flow = Flow(
        name="f",
        steps=[Step(id="a", tool=plain, arguments={"x": 1}), Step(id="b", tool=plain, arguments={"x": Ref("a")})],
    )
    assert flow.plan.plain == (True, True)


def test_literals_are_checked_against_annotations_when_the_flow_is_built() -> None:
    with pytest.raises(FlowValidationError) as caught:
        Flow(name="f", steps=[Step(id="s", tool=double, arguments={"x": "ab", "y": 1})])
    assert [p.location for p in caught.value.problems] == ["steps[0] (s).arguments.y", "steps[0] (s).arguments.x"]


def test_keyword_rest_and_idempotency_key_and_unannotated_parameters() -> None:
    seen: list[dict[str, Any]] = []

    @tool
    def many(a: int, b, idempotency_key: str, **rest: Any) -> None:  # type: ignore[no-untyped-def]
        seen.append({"a": a, "b": b, "rest": rest, "key": idempotency_key})

    assert many.idempotency_key
    assert set(many.input_model.model_fields) == {"a", "b"}  # type: ignore[union-attr]
    step = Step(id="s", tool=many, arguments={"a": Input("a"), "b": Input("b"), "extra": 3})
    result = SyncDriver().run(Flow(name="f", steps=[step]), {"a": "1", "b": "x"}, run_id="r")
    assert result.status.value == "succeeded"
    assert seen == [{"a": 1, "b": "x", "rest": {"extra": 3}, "key": "r/s"}]


def test_a_tool_is_callable_as_its_function() -> None:
    assert double(3) == 6
    assert double.fn(3) == 6


def test_mypy_sees_the_functions_signature(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    example = tmp_path / "typed_tools.py"
    example.write_text(
        textwrap.dedent(
            """
            from flowkernel import Tool, tool

            @tool
            def double(x: int) -> int:
                return x * 2

            @tool(name="half", validate=False)
            async def half(x: float) -> float:
                return x / 2

            n: int = double(2)
            t: Tool = double
            reveal_type(double)
            reveal_type(half)
            double("a")
            """
        )
    )
    out, _, status = api.run(["--strict", "--no-incremental", "--cache-dir=/dev/null", str(example)])
    assert 'Revealed type is "flowkernel.model.tool.Tool[[x: int], int]"' in out
    assert "Tool[[x: float], typing.Coroutine[Any, Any, float]]" in out
    assert 'Argument 1 to "__call__" of "Tool" has incompatible type "str"; expected "int"' in out
    assert out.count("error:") == 1
    assert status == 1


def test_annotations_that_would_make_a_value_lazy_are_not_checked() -> None:
    from collections.abc import Iterable

    seen: list[list[str]] = []

    @tool
    def twice(words: Iterable[str], n: int) -> list[Iterable[int]]:
        seen.append([*words, *words])  # iterates twice: a one-pass validator iterator would break this
        return [[n]]

    assert twice.input_model is not None
    assert set(twice.input_model.model_fields) == {"words", "n"}
    assert twice.output_model is None
    assert run_one(twice, words=["a"], n="1").outputs == {"s": [[1]]}
    assert seen == [["a", "a"]]


def test_parameters_named_like_model_methods_are_fine() -> None:
    @tool
    def post(json: dict[str, int], model_id: int, schema: str = "") -> int:
        return len(json) + model_id + len(schema)

    assert run_one(post, json={"a": 1}, model_id="2").outputs == {"s": 3}
