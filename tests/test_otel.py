"""OpenTelemetry tracing (``flowkernel.otel``): the span tree of a run, on every driver."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "opentelemetry.sdk.trace", reason="opentelemetry-sdk is not installed (pip install flowkernel[otel])"
)

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from flowkernel import CachePolicy, Flow, Input, Item, RetryPolicy, Step, tool
from flowkernel.host import Driver, current_invoke
from flowkernel.host.cache import StepCache
from flowkernel.host.middleware import through_chain
from flowkernel.otel import Tracing, parent_path
from flowkernel.protocol import Invoke

# Module level, so the tools (module-level too, as the Dask driver needs) reach the same provider.
EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))
TOOL_TRACER = trace.get_tracer("test-tools", tracer_provider=PROVIDER)


@tool
def inc(x: int) -> int:
    with TOOL_TRACER.start_as_current_span("tool work"):
        return x + 1


@tool(retry=RetryPolicy(max_attempts=2, initial_delay=0.01, jitter=0.0))
def flaky() -> str:
    with TOOL_TRACER.start_as_current_span("tool work"):
        if current_invoke().attempt == 1:
            raise ConnectionError("try again")
        return "ok"


@tool
def boom() -> None:
    raise ValueError("bad input")


INNER = Flow(name="inner", steps=[Step(id="a", tool=inc, arguments={"x": 1})])
FLOW = Flow(
    name="traced",
    steps=[
        Step(id="plain", tool=inc, arguments={"x": 1}),
        Step(id="retry", tool=flaky),
        Step(id="fail", tool=boom, on_error="continue"),
        Step(id="sub", flow=INNER),
        Step(id="each", tool=inc, map=Input("xs"), arguments={"x": Item()}),
    ],
)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    EXPORTER.clear()
    return EXPORTER


def by_name(spans: Sequence[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name.startswith(prefix)]


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def attr(span: ReadableSpan, name: str) -> Any:
    assert span.attributes is not None
    return span.attributes.get(name)


def check_tree(spans: Sequence[ReadableSpan], run_id: str) -> None:
    """The span tree of one run of FLOW with ``xs == [1, 2]``."""
    spans = [s for s in spans if attr(s, "flowkernel.run_id") in (run_id, None)]
    (run,) = by_name(spans, "flowkernel.run ")
    assert run.name == "flowkernel.run traced"
    assert run.parent is None
    assert attr(run, "flowkernel.flow") == "traced"
    assert attr(run, "flowkernel.status") == "succeeded"
    steps = {attr(s, "flowkernel.step"): s for s in by_name(spans, "flowkernel.step ")}
    assert set(steps) == {"plain", "retry", "fail", "sub", "sub/a", "each", "each[0]", "each[1]"}
    assert len(by_name(spans, "flowkernel.step ")) == len(steps)  # one span per step, retries included
    for path, step in steps.items():
        parent = steps[parent_path(path)] if parent_path(path) else run
        assert parent_id(step) == span_id(parent), path
        assert step.context is not None
        assert run.context is not None
        assert step.context.trace_id == run.context.trace_id
        assert step.start_time is not None
        assert step.end_time is not None
        assert run.start_time is not None
        assert run.end_time is not None
        assert run.start_time <= step.start_time <= step.end_time <= run.end_time
    assert parent_id(steps["sub/a"]) == span_id(steps["sub"])
    assert parent_id(steps["each[1]"]) == span_id(steps["each"])

    attempts = by_name(spans, "flowkernel.attempt ")
    assert sorted((attr(a, "flowkernel.step"), attr(a, "flowkernel.attempt")) for a in attempts) == [
        ("each[0]", 1), ("each[1]", 1), ("fail", 1), ("plain", 1), ("retry", 1), ("retry", 2), ("sub/a", 1),
    ]  # fmt: skip
    for attempt in attempts:
        assert parent_id(attempt) == span_id(steps[attr(attempt, "flowkernel.step")])
        assert attr(attempt, "flowkernel.call_id").endswith(f"@{attr(attempt, 'flowkernel.attempt')}")
    attempt_ids = {span_id(a): a for a in attempts}

    work = by_name(spans, "tool work")
    assert len(work) == 6  # plain, retry twice, sub/a, each[0], each[1]
    assert all(parent_id(w) in attempt_ids for w in work)
    assert sorted(attr(attempt_ids[parent_id(w)], "flowkernel.step") for w in work) == sorted(  # type: ignore[index]
        ["plain", "retry", "retry", "sub/a", "each[0]", "each[1]"]
    )

    # The retry: the first attempt failed (exception recorded), the step succeeded, events on the step.
    retry = steps["retry"]
    first, second = sorted(by_name([a for a in attempts if attr(a, "flowkernel.step") == "retry"], ""),
                           key=lambda a: attr(a, "flowkernel.attempt"))  # fmt: skip
    assert first.status.status_code is StatusCode.ERROR
    assert [e.name for e in first.events] == ["exception"]
    assert first.events[0].attributes is not None
    assert first.events[0].attributes["exception.type"] == "ConnectionError"
    assert second.status.status_code is StatusCode.UNSET
    assert not second.events
    assert retry.status.status_code is StatusCode.UNSET
    assert [e.name for e in retry.events] == ["attempt failed", "retry scheduled"]
    scheduled = retry.events[1].attributes
    assert scheduled is not None
    assert scheduled["flowkernel.attempt"] == 2
    assert scheduled["flowkernel.retry.delay"] == pytest.approx(0.01)

    # The failed step: ERROR on its attempt (exception recorded) and on the step (error.type).
    fail = steps["fail"]
    assert fail.status.status_code is StatusCode.ERROR
    assert fail.status.description == "ValueError: bad input"
    assert attr(fail, "error.type") == "ValueError"
    assert attr(fail, "flowkernel.status") == "failed"
    (fail_attempt,) = [a for a in attempts if attr(a, "flowkernel.step") == "fail"]
    assert fail_attempt.status.status_code is StatusCode.ERROR
    assert [e.name for e in fail_attempt.events] == ["exception"]
    assert attr(steps["plain"], "flowkernel.tool") == "inc"
    assert attr(steps["sub"], "flowkernel.tool") is None


def test_the_span_tree_on_every_driver(flowkernel_driver: Driver, exporter: InMemorySpanExporter) -> None:
    tracing = Tracing(PROVIDER)
    result = flowkernel_driver.run_blocking(FLOW, {"xs": [1, 2]}, run_id="traced-1", **tracing.settings())
    assert result.status == "succeeded"
    assert result.outputs["each"] == [2, 3]
    check_tree(exporter.get_finished_spans(), "traced-1")


def test_several_runs_at_once_through_one_tracing(flowkernel_driver: Driver, exporter: InMemorySpanExporter) -> None:
    tracing = Tracing(PROVIDER)
    errors: list[BaseException] = []

    def one(run_id: str) -> None:
        try:
            flowkernel_driver.run_blocking(
                FLOW, {"xs": [1, 2]}, run_id=run_id, on_event=tracing.on_event, middleware=[tracing.middleware]
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(f"run-{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    spans = exporter.get_finished_spans()
    assert len(by_name(spans, "flowkernel.run ")) == 3
    by_run: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        if span.name == "tool work":  # no run id of its own: assigned through its attempt span
            continue
        by_run.setdefault(attr(span, "flowkernel.run_id"), []).append(span)
    attempts = {span_id(s): attr(s, "flowkernel.run_id") for s in by_name(spans, "flowkernel.attempt ")}
    for span in by_name(spans, "tool work"):
        by_run[attempts[parent_id(span)]].append(span)  # type: ignore[index]
    assert sorted(by_run) == ["run-0", "run-1", "run-2"]
    for run_id, run_spans in by_run.items():
        check_tree(run_spans, run_id)


def test_a_failed_run_has_an_error_status(exporter: InMemorySpanExporter) -> None:
    from flowkernel_sync import SyncDriver

    tracing = Tracing(PROVIDER)
    flow = Flow(name="broken", steps=[Step(id="boom", tool=boom), Step(id="after", tool=inc, arguments={"x": 1},
                                                                         after=("boom",))])  # fmt: skip
    result = SyncDriver().run_blocking(flow, **tracing.settings())
    assert result.status == "failed"
    spans = exporter.get_finished_spans()
    (run,) = by_name(spans, "flowkernel.run ")
    assert run.status.status_code is StatusCode.ERROR
    assert attr(run, "flowkernel.status") == "failed"
    steps = {attr(s, "flowkernel.step"): s for s in by_name(spans, "flowkernel.step ")}
    assert steps["boom"].status.status_code is StatusCode.ERROR
    assert attr(steps["after"], "flowkernel.status") == "skipped"  # never started: a span with no duration
    assert steps["after"].start_time == steps["after"].end_time
    assert parent_id(steps["after"]) == span_id(run)


def test_a_step_the_cache_answered_says_so_on_its_span(exporter: InMemorySpanExporter, tmp_path: Path) -> None:
    from flowkernel_sync import SyncDriver

    tracing = Tracing(PROVIDER)
    flow = Flow(name="cached", steps=[Step(id="s", tool=inc, arguments={"x": 1}, cache=CachePolicy())])
    with StepCache(tmp_path / "cache.db") as cache:
        for _ in range(2):
            SyncDriver().run_blocking(flow, cache=cache, **tracing.settings())
    first, second = by_name(exporter.get_finished_spans(), "flowkernel.step ")
    assert (attr(first, "flowkernel.cached"), attr(second, "flowkernel.cached")) == (None, True)
    assert attr(second, "flowkernel.status") == "succeeded"


def test_the_run_span_nests_under_the_callers_span(exporter: InMemorySpanExporter) -> None:
    from flowkernel_sync import SyncDriver

    tracing = Tracing(PROVIDER)
    with TOOL_TRACER.start_as_current_span("caller") as caller:
        SyncDriver().run_blocking(Flow(name="one", steps=[Step(id="s", tool=inc, arguments={"x": 1})]),
                                  **tracing.settings())  # fmt: skip
    (run,) = by_name(exporter.get_finished_spans(), "flowkernel.run ")
    assert parent_id(run) == caller.get_span_context().span_id


def test_pickled_by_reference_and_a_stand_in_elsewhere(exporter: InMemorySpanExporter) -> None:
    tracing = Tracing(PROVIDER)
    assert pickle.loads(pickle.dumps(tracing)) is tracing
    assert pickle.loads(pickle.dumps(tracing.middleware)).__self__ is tracing
    # In another process the key names no live Tracing: the middleware only passes the call on.
    blob = pickle.dumps(tracing).replace(tracing._key.encode(), b"0" * len(tracing._key))
    stand_in = pickle.loads(blob)
    assert stand_in is not tracing
    call = Invoke(call_id="s@1", step_id="s", tool=inc, arguments={"x": 1}, attempt=1, run_id="elsewhere")
    chain = through_chain([stand_in.middleware], call)
    assert chain.send(None) == call
    with pytest.raises(StopIteration) as stop:
        chain.send(2)
    assert stop.value.value == 2
    assert exporter.get_finished_spans() == ()


def test_parent_paths() -> None:
    assert parent_path("report/each[3]") == "report/each"
    assert parent_path("report/each") == "report"
    assert parent_path("report") == ""
    assert parent_path("each[0]/fetch") == "each[0]"
    assert parent_path("each[12]") == "each"


def test_without_an_sdk_the_tracing_costs_nothing_visible() -> None:
    from flowkernel_sync import SyncDriver

    tracing = Tracing(trace.NoOpTracerProvider())
    result = SyncDriver().run_blocking(FLOW, {"xs": [1, 2]}, **tracing.settings())
    assert result.status == "succeeded"
    assert tracing._runs == {}
