"""Results: JSON round trips, the canonical form, errors in declaration order."""

from __future__ import annotations

import datetime as dt
import json
import pickle
import threading
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any, NoReturn

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
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
    ToolError,
    run_flow,
    tool,
)
from flowkernel.result import MAX_MESSAGE_CHARS, MAX_TRACEBACK_CHARS, json_ready
from flowkernel_sync import SyncDriver


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


def test_canonical_drops_only_the_timing_fields_cached_flags_and_errors_tracebacks_and_details() -> None:
    result = drive(mixed_flow(), MIXED_OUTCOMES, clock=[float(k) for k in range(20)])
    full = json.loads(result.to_json())
    errors = []
    for step in full["steps"]:
        for attempt in step["attempts"]:
            assert "started" in attempt
            assert "finished" in attempt
            assert attempt["cached"] is False  # no step cache in this run
            del attempt["started"], attempt["finished"], attempt["cached"]
        errors += [e for e in (step["error"], *(a["error"] for a in step["attempts"])) if e is not None]
    assert len(errors) == 2  # step bad's own and its attempt's
    for error in errors:
        assert error.pop("traceback") == "ValueError: boom\n"  # never raised: no frames
        assert error.pop("details") is None
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


# ---- error records: tracebacks and details ------------------------------------------------------------


def raise_from_a_helper() -> None:
    raise ToolError("the server refused the call", details={"code": -32602, "data": {"field": "q"}})


def caught(fn: Callable[[], object]) -> BaseException:
    try:
        fn()
    except Exception as exc:
        return exc
    raise AssertionError(f"{fn} did not raise")


def throw(exc: BaseException) -> NoReturn:
    raise exc


def raised(exc: BaseException) -> BaseException:
    """``exc``, raised from ``throw``, so that it has a traceback."""
    return caught(lambda: throw(exc))


def test_from_exception_keeps_the_traceback_naming_the_frames_that_raised() -> None:
    error = ErrorInfo.from_exception(caught(raise_from_a_helper))
    assert error.traceback is not None
    assert error.traceback.startswith("Traceback (most recent call last):\n")
    assert ", in raise_from_a_helper\n" in error.traceback
    assert 'raise ToolError("the server refused the call"' in error.traceback  # the source line too
    assert error.traceback.endswith("flowkernel.errors.ToolError: the server refused the call\n")
    assert error.details == {"code": -32602, "data": {"field": "q"}}


def test_the_traceback_keeps_the_causes() -> None:
    def wrapped() -> None:
        table: dict[str, int] = {}
        try:
            table["missing"]
        except KeyError as exc:
            raise RuntimeError("lookup failed") from exc

    traceback = ErrorInfo.from_exception(caught(wrapped)).traceback
    assert traceback is not None
    assert (
        traceback.index("KeyError: 'missing'")
        < traceback.index("direct cause")
        < traceback.index("RuntimeError: lookup failed")
    )


def recurse(n: int) -> None:
    if n == 0:
        raise ValueError("at the bottom")
    recurse_again(n - 1)


def recurse_again(n: int) -> None:  # frames alternate, so Python does not fold them into "repeated N times"
    recurse(n)


def test_a_long_traceback_is_cut_in_the_middle_and_says_so() -> None:
    error = ErrorInfo.from_exception(caught(lambda: recurse(400)))
    assert error.traceback is not None
    assert len(error.traceback) <= MAX_TRACEBACK_CHARS
    assert MAX_TRACEBACK_CHARS - len(error.traceback) < 1_000  # the bound is used, not just respected
    assert error.traceback.startswith("Traceback (most recent call last):\n")
    assert "in <lambda>" in error.traceback  # the outermost frames are kept...
    assert error.traceback.endswith('raise ValueError("at the bottom")\nValueError: at the bottom\n')  # ...the newest
    [note] = [line for line in error.traceback.splitlines() if f"cut to keep it under {MAX_TRACEBACK_CHARS:,}" in line]
    cut = int(note.split("[... ")[1].split(" traceback entries")[0])
    assert cut > 600  # most of the 800 frames of recurse() and recurse_again()


def test_a_huge_message_is_cut_in_the_message_and_in_the_traceback() -> None:
    message = "start " + "x" * 10_000_000 + " end"
    error = ErrorInfo.from_exception(raised(ValueError(message)))
    assert len(error.message) == MAX_MESSAGE_CHARS
    assert error.message.startswith("start xxx")
    assert error.message.endswith("xxx end")
    assert "10,000,010 characters, cut to 8,000" in error.message
    assert error.traceback is not None
    assert len(error.traceback) <= MAX_TRACEBACK_CHARS
    assert "ValueError: start xxx" in error.traceback
    assert error.traceback.endswith("xxx end\n")


def test_details_are_copied_into_plain_json_data() -> None:
    class Remote(Exception):
        def __init__(self, details: Any) -> None:
            super().__init__("remote failure")
            self.details = details

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    source = {"code": 7, "retry": (1, 2), "at": dt.date(2026, 1, 2), "obj": Opaque(), 3: "int key"}
    error = ErrorInfo.from_exception(Remote(MappingProxyType(source)))
    assert error.details == {"code": 7, "retry": [1, 2], "at": "2026-01-02", "obj": "<opaque>", "3": "int key"}
    assert type(error.details) is dict
    source["code"] = 8
    assert error.details["code"] == 7  # a copy, not a view of the exception's mapping
    assert ErrorInfo.from_exception(Remote(["not", "a", "mapping"])).details is None
    assert ErrorInfo.from_exception(ValueError("no details attribute")).details is None


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")


class UnprintableEverywhere(Unprintable):
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class HoldsALock(Exception):
    def __init__(self) -> None:
        super().__init__("holds a lock")
        self.lock = threading.Lock()
        self.details = {"lock": self.lock, "code": 1}


class HostileDetails(Exception):
    @property
    def details(self) -> Any:
        raise RuntimeError("no details")


class HostileNotes(Exception):
    @property
    def __notes__(self) -> Any:  # type: ignore[override]
        raise RuntimeError("no notes")


def cyclic() -> BaseException:
    first, second = ValueError("first"), KeyError("second")
    first.__cause__, second.__cause__ = second, first
    return first


def cyclic_details() -> BaseException:
    details: dict[str, Any] = {"code": 1}
    details["self"] = details
    return ToolError("cyclic details", details=details)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (Unprintable, "<unprintable Unprintable: __str__ raised RuntimeError>"),
        (UnprintableEverywhere, "<unprintable UnprintableEverywhere: __str__ raised RuntimeError>"),
        (lambda: ValueError("y" * 10_000_000), "y" * 100),
        (cyclic, "first"),
        (HoldsALock, "holds a lock"),
        (HostileDetails, ""),
        (HostileNotes, ""),
        (cyclic_details, "cyclic details"),
    ],
    ids=["raising-str", "raising-str-and-repr", "10MB-message", "cyclic-cause", "unpicklable-attributes",
         "raising-details", "raising-notes", "cyclic-details"],
)  # fmt: skip
def test_hostile_exceptions_still_become_error_records(make: Callable[[], BaseException], message: str) -> None:
    exc = raised(make())
    error = ErrorInfo.from_exception(exc, ErrorKind.TOOL).for_step("s")
    assert error.message.startswith(message)
    assert len(error.message) <= MAX_MESSAGE_CHARS
    assert error.type.endswith(type(exc).__qualname__)
    assert error.traceback is not None
    assert len(error.traceback) <= MAX_TRACEBACK_CHARS
    assert ", in throw\n" in error.traceback  # the frames are there
    back = pickle.loads(pickle.dumps(error))  # as the journal stores it, and as Dask ships it
    assert (back, back.traceback, back.details) == (error, error.traceback, error.details)
    record = ExecutionResult("r", "f", "1", RunStatus.FAILED, steps=(StepRecord("s", StepStatus.FAILED, error=error),))
    assert ExecutionResult.from_json(record.to_json()).step("s").error == error


def test_hostile_details_are_kept_as_far_as_they_can_be() -> None:
    lock = ErrorInfo.from_exception(HoldsALock())
    assert lock.details is not None
    assert lock.details["code"] == 1
    assert lock.details["lock"].startswith("<unlocked _thread.lock object")
    assert ErrorInfo.from_exception(HostileDetails()).details is None
    cycle = ErrorInfo.from_exception(cyclic_details())
    assert cycle.details is not None
    assert cycle.details["code"] == 1
    assert cycle.details["self"].startswith("{'code': 1, 'self': {...}}")
    tb = ErrorInfo.from_exception(raised(HostileNotes("noted"))).traceback
    assert tb is not None
    assert tb.endswith(f"{__name__}.HostileNotes: noted\n")  # formatted without the notes that raise


def test_equality_and_hashing_ignore_traceback_and_details() -> None:
    plain = ErrorInfo(ErrorKind.TOOL, "ValueError", "boom", "s")
    rich = ErrorInfo(ErrorKind.TOOL, "ValueError", "boom", "s", "Traceback ...", {"code": 1})
    assert plain == rich
    assert hash(plain) == hash(rich)
    assert plain != ErrorInfo(ErrorKind.TOOL, "ValueError", "other", "s")
    assert "Traceback" not in repr(rich)  # kept out of reprs (and so of assertion messages)
    assert "'code': 1" in repr(rich)


def test_for_step_keeps_traceback_and_details() -> None:
    error = ErrorInfo.from_exception(caught(raise_from_a_helper))
    moved = error.for_step("s")
    assert moved.step == "s"
    assert moved.traceback == error.traceback
    assert moved.details == error.details


def failed_result(error: ErrorInfo) -> ExecutionResult:
    attempt = AttemptRecord(1, AttemptStatus.FAILED, 1.0, 2.0, error)
    step = StepRecord("s", StepStatus.FAILED, {}, None, error, (attempt,))
    return ExecutionResult("r", "f", "1", RunStatus.FAILED, steps=(step,))


def test_canonical_leaves_out_traceback_and_details_and_json_keeps_them() -> None:
    error = ErrorInfo.from_exception(caught(raise_from_a_helper)).for_step("s")
    result = failed_result(error)
    expected = {"kind": "tool", "type": "flowkernel.errors.ToolError", "message": error.message, "step": "s"}
    canonical = result.canonical()
    assert canonical["steps"][0]["error"] == expected
    assert canonical["steps"][0]["attempts"][0]["error"] == expected
    assert result.to_dict(timing=False)["steps"][0]["error"].keys() == expected.keys()
    written = json.loads(result.to_json())
    for where in (written["steps"][0]["error"], written["steps"][0]["attempts"][0]["error"]):
        assert where == {**expected, "traceback": error.traceback, "details": error.details}
    back = ExecutionResult.from_json(result.to_json())
    for read in (back.step("s").error, back.step("s").attempts[0].error):
        assert read is not None
        assert (read.traceback, read.details) == (error.traceback, {"code": -32602, "data": {"field": "q"}})


def test_canonical_is_equal_whatever_the_traceback() -> None:
    one = failed_result(ErrorInfo(ErrorKind.TOOL, "E", "m", "s", "Traceback: driver one", {"code": 1}))
    two = failed_result(ErrorInfo(ErrorKind.TOOL, "E", "m", "s", "Traceback: driver two", None))
    assert one == two
    assert one.canonical() == two.canonical()
    assert one.to_json() != two.to_json()


def test_details_json_cannot_hold_are_written_as_their_repr() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    result = failed_result(ErrorInfo(ErrorKind.TOOL, "E", "m", "s", None, {"obj": Opaque(), "n": 1}))
    assert json.loads(result.to_json())["steps"][0]["error"]["details"] == {"obj": "<opaque>", "n": 1}
    back = ExecutionResult.from_json(result.to_json()).step("s").error
    assert back is not None
    assert back.details == {"obj": "<opaque>", "n": 1}


def test_records_pickled_before_traceback_and_details_existed_still_load(monkeypatch: pytest.MonkeyPatch) -> None:
    error = ErrorInfo(ErrorKind.TOOL, "ValueError", "boom", "s", "Traceback ...", {"code": 1})
    monkeypatch.setattr(ErrorInfo, "__getstate__", lambda self: [self.kind, self.type, self.message, self.step])
    old = pickle.dumps(error)  # the four fields an older journal holds
    monkeypatch.undo()
    back = pickle.loads(old)
    assert back == error
    assert (back.traceback, back.details) == (None, None)
    assert pickle.loads(pickle.dumps(error)).details == {"code": 1}


def test_a_failing_tool_on_the_sync_driver_has_its_traceback_on_the_step_record() -> None:
    @tool
    def refuse_politely(x: int) -> int:
        raise ToolError(f"no {x}", details={"code": 429})

    flow = Flow(name="f", steps=[Step(id="a", tool=refuse_politely, arguments={"x": 1})])
    result = SyncDriver().run(flow)
    error = result.step("a").error
    assert error is not None
    assert error.traceback is not None
    assert ", in refuse_politely\n" in error.traceback
    assert error.traceback.endswith("flowkernel.errors.ToolError: no 1\n")
    assert error.details == {"code": 429}
    attempt_error = result.step("a").attempts[0].error
    assert attempt_error is not None
    assert attempt_error.traceback == error.traceback


# ---- any value a tool returns: strict JSON, canonical forms equal for equal runs ---------------------


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"not strict JSON: {name}")


def strict_json(text: str) -> Any:
    """``json.loads`` that refuses ``NaN``, ``Infinity`` and ``-Infinity``."""
    return json.loads(text, parse_constant=_refuse_constant)


def pass_through_flow() -> Flow:
    return Flow(name="f", steps=[Step(id="a", tool=src), Step(id="b", tool=use, arguments={"v": Ref("a")})])


def run_returning(value: Any, again: Any) -> ExecutionResult:
    """A run whose step ``a`` returns ``value`` and step ``b`` (given ``a``'s output) returns ``again``."""
    return drive(pass_through_flow(), {"a": value, "b": again}, clock=[0.0, 1.0, 2.0, 3.0])


def rebuilt(value: Any) -> Any:
    """An equal value made of new objects (a new nan, sets and dicts filled in another order)."""
    if isinstance(value, float):
        return float(repr(value))
    if isinstance(value, bytes):
        return bytes(bytearray(value))
    if isinstance(value, str):
        return "".join(list(value))
    if isinstance(value, list):
        return [rebuilt(item) for item in value]
    if isinstance(value, tuple):
        return tuple(rebuilt(item) for item in value)
    if isinstance(value, dict):
        return dict(reversed([(key, rebuilt(item)) for key, item in value.items()]))
    if isinstance(value, set | frozenset):
        return type(value)(reversed([rebuilt(item) for item in value]))
    return value


def test_non_utf8_bytes_become_base64_in_canonical_and_in_json() -> None:
    result = run_returning(b"\xff\xfe\x00", {"raw": b"\x80", b"\xff": 1})
    canonical = result.canonical()  # raised UnicodeDecodeError
    assert canonical["steps"][0]["output"] == "__4A"  # URL-safe base64, as pydantic's bytes_mode="base64"
    assert canonical["steps"][1]["input"] == {"v": "__4A"}
    assert canonical["outputs"] == {"b": {"raw": "gA==", "_w==": 1}}
    written = strict_json(result.to_json())
    assert written["steps"][0]["output"] == "__4A"
    assert written["outputs"] == canonical["outputs"]
    assert result.canonical() == run_returning(b"\xff\xfe\x00", {b"\xff": 1, "raw": b"\x80"}).canonical()


def test_nan_and_infinities_are_strings_so_equal_runs_have_equal_canonical_forms() -> None:
    values = [float("nan"), float("inf"), -float("inf"), 1.5]
    one, two = run_returning(values, None), run_returning(rebuilt(values), None)
    assert one.steps[0].output[0] is not two.steps[0].output[0]  # two nan objects: nan != nan
    assert one.canonical() == two.canonical()  # were unequal
    assert one.canonical()["steps"][0]["output"] == ["NaN", "Infinity", "-Infinity", 1.5]
    text = one.to_json()
    assert "NaN" not in text.replace('"NaN"', "")  # no bare NaN token (was written)
    assert strict_json(text)["steps"][0]["output"] == ["NaN", "Infinity", "-Infinity", 1.5]
    assert strict_json(one.to_json(indent=2)) == strict_json(text)


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class Plain:
    pass


class Measures(BaseModel):
    ratio: float
    raw: bytes
    tags: set[str]


def test_any_value_becomes_strict_json_the_same_way_every_time() -> None:
    deep: list[Any] = []
    cursor = deep
    for _ in range(5_000):
        cursor.append([])
        cursor = cursor[0]
    looped: list[Any] = [1]
    looped.append(looped)
    numbers = iter([1, 2, 3])

    def value() -> dict[str, Any]:
        return {
            "set": {"b", "a", "c", "d", "e"},
            "frozen": frozenset({3, 1, 2}),
            "tuple": (1, (2, 3)),
            "hostile": Hostile(),
            "plain": Plain(),
            "model": Measures(ratio=float("nan"), raw=b"\xff", tags={"y", "x"}),
            "when": dt.datetime(2026, 1, 2, 3, 4, 5),
            "surrogate": "a\udc80b",
            "keys": {1: "int", None: "none", (1, 2): "tuple"},
            "iterator": numbers,
            "deep": deep,
            "looped": looped,
            "huge": 7**20_000,
        }

    one, two = run_returning(value(), None), run_returning(value(), None)
    canonical = one.canonical()
    assert canonical == two.canonical()
    output = canonical["steps"][0]["output"]
    assert output["set"] == ["a", "b", "c", "d", "e"]
    assert output["frozen"] == [1, 2, 3]
    assert output["tuple"] == [1, [2, 3]]
    assert output["hostile"] == "<unrepresentable Hostile: __repr__ raised RuntimeError>"
    assert output["plain"] == f"<{__name__}.Plain object>"  # no memory address: it differs from run to run
    assert output["model"] == {"ratio": "NaN", "raw": "_w==", "tags": ["x", "y"]}
    assert output["when"] == "2026-01-02T03:04:05"
    assert output["surrogate"] == "a\ufffdb"  # a lone surrogate is not UTF-8
    assert output["keys"] == {"1": "int", "null": "none", "[1,2]": "tuple"}
    assert output["iterator"] == "<list_iterator object>"
    assert list(numbers) == [1, 2, 3]  # not used up
    assert output["looped"] == [1, "<recursive list>"]
    assert output["huge"].startswith("0x")
    depth, inner = 0, output["deep"]
    while isinstance(inner, list) and inner:
        depth, inner = depth + 1, inner[0]
    assert inner == "<list nested too deep>"
    assert depth < 100
    json.dumps(canonical, allow_nan=False)
    assert strict_json(one.to_json())["outputs"]["b"] is None
    one.to_json().encode("utf-8")  # valid UTF-8: no lone surrogate was written


def test_keys_that_become_the_same_string_do_not_make_the_order_matter() -> None:
    one = run_returning({1: "int", "1": "str"}, None).canonical()
    two = run_returning({"1": "str", 1: "int"}, None).canonical()
    assert one == two
    assert one["steps"][0]["output"] == {"1": "str"}


def test_json_ready_is_public_and_leaves_plain_json_as_it_is() -> None:
    plain = {"a": [1, 2.5, "ünï", None, True, {"b": []}]}
    assert json_ready(plain) == plain
    assert json_ready(RunStatus.FAILED) == "failed"
    assert type(json_ready(RunStatus.FAILED)) is str


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # nan and the infinities included
    | st.text(st.characters(codec=None, exclude_categories=()))  # lone surrogates included
    | st.binary()
)
hashable_leaves = st.integers() | st.text() | st.binary()
json_ish = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=4), children, max_size=4)
        | st.sets(hashable_leaves, max_size=5)
        | st.frozensets(hashable_leaves, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(value=json_ish)
def test_property_json_is_strict_and_equal_runs_give_equal_canonical_forms(value: Any) -> None:
    one = run_returning(value, rebuilt(value))
    two = run_returning(rebuilt(value), rebuilt(value))
    text = one.to_json()
    written = strict_json(text)
    text.encode("utf-8")
    assert one.canonical() == two.canonical()
    assert strict_json(two.to_json()) == written
    assert json.loads(json.dumps(one.canonical(), allow_nan=False)) == one.canonical()


def test_a_cached_attempt_says_so_in_the_record_and_json_but_not_in_the_canonical_form() -> None:
    flow = Flow(name="f", steps=[Step(id="a", tool=src)])
    gen = run_flow(flow, {}, RunOptions("run-1"))
    (invoke,) = gen.send(None)
    with pytest.raises(StopIteration) as stop:
        gen.send([Returned(invoke.call_id, 5, 1.0, 1.0, True)])
    cached: ExecutionResult = stop.value.value
    assert cached.step("a").attempts == (AttemptRecord(1, AttemptStatus.SUCCEEDED, 1.0, 1.0, cached=True),)
    assert json.loads(cached.to_json())["steps"][0]["attempts"][0]["cached"] is True
    assert ExecutionResult.from_json(cached.to_json()) == cached
    computed = drive(flow, {"a": 5}, clock=[1.0, 1.0])
    assert computed.step("a").attempts[0].cached is False
    assert cached != computed
    assert cached.canonical() == computed.canonical()
    assert "cached" not in cached.to_dict(timing=False)["steps"][0]["attempts"][0]


def test_a_large_results_repr_counts_its_steps_and_a_small_ones_shows_them() -> None:
    """``asyncio.run`` reprs its main task's result on the way out: a large result's repr stays small."""
    steps = tuple(StepRecord(f"s{i}", StepStatus.SUCCEEDED if i % 3 else StepStatus.FAILED) for i in range(10_000))
    big = ExecutionResult("r", "f", "1", RunStatus.FAILED, {"out": list(range(1_000))}, steps, reason="boom")
    text = repr(big)
    assert len(text) < 300
    assert "<10,000 steps: 3334 failed, 6666 succeeded>" in text
    assert "reason='boom'" in text
    small = ExecutionResult("r", "f", "1", RunStatus.SUCCEEDED, {"out": 1}, steps[1:3])
    assert repr(small) == (
        "ExecutionResult(run_id='r', flow_name='f', flow_version='1', status=<RunStatus.SUCCEEDED: 'succeeded'>, "
        f"outputs={{'out': 1}}, steps={steps[1:3]!r})"
    )


def test_asyncio_run_of_a_large_run_does_not_repr_its_steps() -> None:
    """The regression: asyncio.run(driver.run(flow)) called repr() on every step record of the result."""
    import asyncio

    from flowkernel import Flow, Ref, Step, tool
    from flowkernel_asyncio import AsyncioDriver

    @tool(validate=False)
    async def inc(x: int) -> int:
        return x + 1

    steps = [Step(id="s0", tool=inc, arguments={"x": 0})]
    steps += [Step(id=f"s{i}", tool=inc, arguments={"x": Ref(f"s{i - 1}")}) for i in range(1, 50)]
    reprs = 0
    original = StepRecord.__repr__

    def counting(self: StepRecord) -> str:
        nonlocal reprs
        reprs += 1
        return original(self)

    StepRecord.__repr__ = counting  # type: ignore[method-assign]
    try:
        result = asyncio.run(AsyncioDriver().run(Flow(name="chain", steps=steps)))
    finally:
        StepRecord.__repr__ = original  # type: ignore[method-assign]
    assert result.outputs == {"s49": 50}
    assert reprs == 0
