"""OpenTelemetry tracing for flowkernel runs (the ``otel`` extra: ``pip install flowkernel[otel]``).

A host-level helper: the kernel never imports it, and it needs only ``opentelemetry-api`` (no SDK; bring
your own ``TracerProvider``, or the global one is used). One :class:`Tracing` serves any number of runs,
at once, on any driver::

    tracing = Tracing(tracer_provider)
    driver.run_blocking(flow, on_event=tracing.on_event, middleware=[tracing.middleware])
    driver.run_blocking(flow, **tracing.settings())  # the same

The spans:

* ``flowkernel.run <flow>``: from ``RunStarted`` to ``RunFinished``, a child of whatever span is current
  where the run's events are delivered; status ERROR when the run did not succeed.
* ``flowkernel.step <path>``: from a step's first ``StepStarted`` to its ``StepFinished`` (or
  ``StepSkipped``/``StepCancelled``, then with no duration if it never started), a child of the run span;
  sub-flow steps and map elements are children of their parent step's span by path (``report/each[3]``
  under ``report/each``, under ``report``). Failed attempts and scheduled retries are span events on it
  (``attempt failed``, ``retry scheduled``); a failed step has status ERROR and ``error.type``; one a
  step cache answered has ``flowkernel.cached`` true.
* ``flowkernel.attempt <tool>``: made by the middleware around each call, in the tool's own thread or
  task, current while the tool runs (so the tool's own spans are its children); an exception the tool
  raises is recorded on it and sets its status to ERROR.

Run and step spans are timed from the events' own times (the driver's clock, through the run's
``RunStarted`` anchor to epoch time), attempt spans by the tracer's clock where the call runs.

The step spans are found by the middleware through a table filled by ``on_event`` (a step's
``StepStarted`` is delivered before its call starts). On the Dask driver the middleware runs on the
workers: a :class:`Tracing` pickles by reference, so with the default in-process cluster the workers use
the same object and get attempt spans. On workers in other processes there is no step span to attach to
there: the middleware then passes the call through and makes no attempt span (the run and step spans are
still made, by ``on_event``, in the client process).
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, TypedDict

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider

from .events import (
    AttemptFailed,
    Event,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepCancelled,
    StepFinished,
    StepSkipped,
    StepStarted,
)

if TYPE_CHECKING:
    from .host.middleware import Middleware
    from .protocol import Invoke

__all__ = ("INSTRUMENTATION_NAME", "Tracing", "TracingSettings", "parent_path")

INSTRUMENTATION_NAME = "flowkernel"

# (tracing key, run id, call id) -> (the step's span, the step's path): filled by on_event, read by the
# middleware in whatever thread or task runs the call. Writes hold the lock; a read is one dict lookup.
_STEP_SPANS: dict[tuple[str, str, str], tuple[Span, str]] = {}
_LOCK = threading.Lock()
_LIVE: weakref.WeakValueDictionary[str, Tracing] = weakref.WeakValueDictionary()


def _live_tracing(key: str) -> Tracing:
    """The :class:`Tracing` with this key in this process, or (elsewhere) a stand-in that traces nothing."""
    found = _LIVE.get(key)
    if found is not None:
        return found
    stand_in = Tracing.__new__(Tracing)
    stand_in._key = key  # never registered: its middleware finds no step span, so it only passes calls on
    stand_in._tracer = trace.NoOpTracer()
    stand_in._runs = {}
    return stand_in


class TracingSettings(TypedDict):
    """The run settings :meth:`Tracing.settings` returns (a part of ``RunSettings``)."""

    on_event: Callable[[Event], object]
    middleware: list[Middleware]


class _Run:
    """One run's open spans; touched only by ``on_event``, which a driver calls from one thread at a time."""

    __slots__ = ("anchor", "calls", "flow", "span", "steps")

    def __init__(self, anchor: RunStarted, span: Span) -> None:
        self.anchor = anchor
        self.span = span
        self.flow = anchor.flow
        self.steps: dict[str, Span] = {}
        self.calls: dict[str, list[str]] = {}  # path -> call ids registered in _STEP_SPANS

    def ns(self, event: Event) -> int:
        """The event's time as epoch nanoseconds (``wall_time_of``, inlined: this runs per event)."""
        anchor = self.anchor
        return int((anchor.wall_time + (event.time - anchor.time)) * 1e9)


def parent_path(path: str) -> str:
    """The path of the step a nested step belongs to (``""`` for a top-level step).

    ``"report/each[3]"`` -> ``"report/each"`` -> ``"report"`` -> ``""``.
    """
    if path.endswith("]"):
        bracket = path.rfind("[")
        if bracket > 0:
            return path[:bracket]
    return path.rpartition("/")[0]


class Tracing:
    """Turns runs into OpenTelemetry spans: pass :attr:`on_event` and :attr:`middleware` to a driver.

    ``tracer_provider``: where the spans go; the global provider when ``None``. Only
    ``opentelemetry-api`` is used, so any SDK (or none: no-op spans) works.
    """

    _key: str
    _tracer: Tracer
    _runs: dict[str, _Run]

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._key = uuid.uuid4().hex
        self._tracer = trace.get_tracer(INSTRUMENTATION_NAME, tracer_provider=tracer_provider)
        self._runs = {}
        _LIVE[self._key] = self

    def __reduce__(self) -> tuple[Callable[[str], Tracing], tuple[str]]:
        # By reference: the same object where it lives (an in-process Dask worker), a stand-in elsewhere.
        return _live_tracing, (self._key,)

    def settings(self) -> TracingSettings:
        """``on_event`` and ``middleware`` for a driver's ``run``: ``driver.run_blocking(flow, **tracing.settings())``
        (to add other middleware or another event consumer, pass ``on_event``/``middleware`` yourself)."""
        return {"on_event": self.on_event, "middleware": [self.middleware]}

    # ---- events: run and step spans -----------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """The event consumer: opens and closes the run and step spans."""
        kind = type(event)
        if kind is RunStarted:
            self._run_started(event)  # type: ignore[arg-type]
            return
        run = self._runs.get(event.run_id)
        if run is None:  # a run that started before this Tracing was attached
            return
        if kind is StepStarted:
            self._step_started(run, event)  # type: ignore[arg-type]
        elif kind is StepFinished:
            self._step_finished(run, event)  # type: ignore[arg-type]
        elif kind is AttemptFailed:
            self._attempt_failed(run, event)  # type: ignore[arg-type]
        elif kind is RetryScheduled:
            self._retry_scheduled(run, event)  # type: ignore[arg-type]
        elif kind is StepSkipped or kind is StepCancelled:
            self._step_ended_early(run, event)  # type: ignore[arg-type]
        elif kind is RunFinished:
            self._run_finished(run, event)  # type: ignore[arg-type]

    def _run_started(self, event: RunStarted) -> None:
        span = self._tracer.start_span(
            f"flowkernel.run {event.flow}",
            kind=SpanKind.INTERNAL,
            start_time=int(event.wall_time * 1e9),
            attributes={
                "flowkernel.run_id": event.run_id,
                "flowkernel.flow": event.flow,
                "flowkernel.flow_version": event.version,
            },
        )
        if not span.get_span_context().is_valid:
            return  # a no-op tracer: nothing to trace, so the run's events are not followed (cheap)
        with _LOCK:  # several runs may start at once in several threads
            self._runs[event.run_id] = _Run(event, span)

    def _step_started(self, run: _Run, event: StepStarted) -> None:
        path = event.path
        span = run.steps.get(path)
        if span is None:  # the first attempt opens the step's span; retries reuse it
            parent = run.steps.get(parent_path(path), run.span) if ("/" in path or "[" in path) else run.span
            attributes: dict[str, str | int] = {
                "flowkernel.run_id": event.run_id,
                "flowkernel.flow": run.flow,
                "flowkernel.step": path,
            }
            if event.tool is not None:
                attributes["flowkernel.tool"] = event.tool
            span = self._tracer.start_span(
                f"flowkernel.step {path}",
                context=trace.set_span_in_context(parent),
                start_time=run.ns(event),
                attributes=attributes,
            )
            run.steps[path] = span
        if event.call_id is not None:
            with _LOCK:
                _STEP_SPANS[(self._key, event.run_id, event.call_id)] = (span, path)
            run.calls.setdefault(path, []).append(event.call_id)

    def _attempt_failed(self, run: _Run, event: AttemptFailed) -> None:
        span = run.steps.get(event.path)
        if span is not None and span.is_recording():
            error = event.error
            span.add_event(
                "attempt failed",
                {
                    "flowkernel.attempt": event.attempt,
                    "error.type": error.type,
                    "flowkernel.error.kind": str(error.kind),
                    "exception.message": error.message,
                },
                timestamp=run.ns(event),
            )

    def _retry_scheduled(self, run: _Run, event: RetryScheduled) -> None:
        span = run.steps.get(event.path)
        if span is not None and span.is_recording():
            span.add_event(
                "retry scheduled",
                {"flowkernel.attempt": event.attempt, "flowkernel.retry.delay": event.delay},
                timestamp=run.ns(event),
            )

    def _step_finished(self, run: _Run, event: StepFinished) -> None:
        span = self._close(run, event.path)
        if span is None:
            return
        if span.is_recording():
            span.set_attribute("flowkernel.status", event.status)
            error = event.error
            if event.status == "failed":
                if error is not None:
                    span.set_attribute("error.type", error.type)
                    span.set_status(Status(StatusCode.ERROR, f"{error.type}: {error.message}"))
                else:
                    span.set_status(Status(StatusCode.ERROR))
            elif error is not None:  # succeeded by its fallback
                span.set_attribute("flowkernel.fallback", event.fallback)
                span.set_attribute("flowkernel.error.type", error.type)
            elif event.cached:
                span.set_attribute("flowkernel.cached", True)
        span.end(end_time=run.ns(event))

    def _step_ended_early(self, run: _Run, event: StepSkipped | StepCancelled) -> None:
        span = self._close(run, event.path)
        end = run.ns(event)
        if span is None:  # never started: a span with no duration, so the step still shows
            path = event.path
            parent = run.steps.get(parent_path(path), run.span) if ("/" in path or "[" in path) else run.span
            span = self._tracer.start_span(
                f"flowkernel.step {path}",
                context=trace.set_span_in_context(parent),
                start_time=end,
                attributes={"flowkernel.run_id": event.run_id, "flowkernel.flow": run.flow, "flowkernel.step": path},
            )
        if span.is_recording():
            if type(event) is StepSkipped:
                span.set_attribute("flowkernel.status", "skipped")
                span.set_attribute("flowkernel.reason", event.reason)
            else:
                span.set_attribute("flowkernel.status", "cancelled")
        span.end(end_time=end)

    def _close(self, run: _Run, path: str) -> Span | None:
        span = run.steps.pop(path, None)
        calls = run.calls.pop(path, None)
        if calls:
            key, run_id = self._key, run.anchor.run_id
            with _LOCK:
                for call_id in calls:
                    _STEP_SPANS.pop((key, run_id, call_id), None)
        return span

    def _run_finished(self, run: _Run, event: RunFinished) -> None:
        end = run.ns(event)
        for path in list(run.steps):  # none, unless events were lost: close them with the run
            span = self._close(run, path)
            if span is not None:
                span.end(end_time=end)
        with _LOCK:
            self._runs.pop(event.run_id, None)
        span = run.span
        if span.is_recording():
            result = event.result
            status = str(result.status)
            span.set_attribute("flowkernel.status", status)
            if status != "succeeded":
                span.set_status(Status(StatusCode.ERROR, result.reason or status))
        span.end(end_time=end)

    # ---- middleware: attempt spans ------------------------------------------------------------------

    def middleware(self, call: Invoke) -> Generator[Invoke, Any, Any]:
        """The call middleware: an attempt span around the call, current while the tool runs."""
        found = _STEP_SPANS.get((self._key, call.run_id, call.call_id))
        if found is None:  # no step span here (a worker in another process): trace nothing
            return (yield call)
        step_span, path = found
        with self._tracer.start_as_current_span(
            f"flowkernel.attempt {call.tool.name}",
            context=trace.set_span_in_context(step_span),
            attributes={
                "flowkernel.run_id": call.run_id,
                "flowkernel.step": path,
                "flowkernel.tool": call.tool.name,
                "flowkernel.call_id": call.call_id,
                "flowkernel.attempt": call.attempt,
            },
            record_exception=True,  # an exception the tool raises: recorded, status ERROR
            set_status_on_exception=True,
        ):
            return (yield call)
