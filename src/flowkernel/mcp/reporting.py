"""What a served run tells its MCP client: progress notifications as steps finish, and the tool result.

Why a module of its own: both are pure translations (events to progress, a result to a ``CallToolResult``)
that the serving code in :mod:`flowkernel.mcp.serve` only wires up; kept apart they are read and tested
on their own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import mcp_types as types

from ..events import Event, StepCancelled, StepFinished, StepSkipped
from ..json_values import json_ready
from ..model.flow import Flow
from ..result import ExecutionResult, RunStatus, StepStatus

__all__ = (
    "RUN_ID_KEY",
    "STATUS_KEY",
    "ProgressReporter",
    "Report",
    "error_result",
    "partial_summary",
    "progress_message",
    "tool_result",
)

RUN_ID_KEY = "flowkernel/run_id"
"""The key of the run id in a tool result's ``_meta`` (``flowkernel show JOURNAL RUN_ID`` with a journal)."""
STATUS_KEY = "flowkernel/status"
"""The key of the run's status in a tool result's ``_meta``."""

Report = Callable[[float, float | None, str | None], Awaitable[None]]
"""``ServerSession.report_progress``: (progress, total, message); a no-op when the caller asked for none."""

logger = logging.getLogger("flowkernel.mcp")


def progress_message(event: Event) -> str | None:
    """The progress message for a step that finished, at any depth (``report/each[3]: succeeded``);
    ``None`` for an event that finishes nothing."""
    if type(event) is StepFinished:
        if event.status == StepStatus.FAILED and event.error is not None:
            return f"{event.path}: failed ({event.error.type}: {event.error.message})"
        how = " (fallback)" if event.fallback else " (cached)" if event.cached else ""
        return f"{event.path}: {event.status}{how}"
    if type(event) is StepSkipped:
        return f"{event.path}: skipped ({event.reason})"
    if type(event) is StepCancelled:
        return f"{event.path}: cancelled"
    return None


class ProgressReporter:
    """Turns a run's events into progress notifications: ``progress`` counts the steps finished at any
    depth (so it grows with every notification, as the protocol asks); ``total`` is the flow's step count
    when that is known, that is without sub-flows or map steps (whose sizes show only at run time).

    :meth:`on_event` is the run's ``on_event`` (called in the driver's loop, never blocking); :meth:`deliver`
    sends what it queued, in order, until :meth:`close`.
    """

    def __init__(self, flow: Flow) -> None:
        flat = all(step.flow is None and step.map is None for step in flow.steps)
        self.total: float | None = float(len(flow.steps)) if flat else None
        self.done = 0
        self._send, self._receive = anyio.create_memory_object_stream[tuple[int, str]](math.inf)

    def on_event(self, event: Event) -> None:
        message = progress_message(event)
        if message is None:
            return
        self.done += 1
        # nobody delivers any more when the request was cancelled: the steps its stop ends must not fail it
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._send.send_nowait((self.done, message))

    def close(self) -> None:
        self._send.close()

    async def deliver(self, report: Report) -> None:
        """Send every queued notification through ``report``; one that cannot be sent (the client went
        away) is dropped, and the rest still drain, so the run is never held up by its audience."""
        async with self._receive:
            async for done, message in self._receive:
                try:
                    await report(float(done), self.total, message)
                except Exception as exc:  # a closed connection: the run goes on, its result still counts
                    logger.debug("progress notification not sent: %s", exc)


def tool_result(result: ExecutionResult) -> types.CallToolResult:
    """A finished run as a tool result: a succeeded run's outputs as structured content (JSON-ready, as
    :func:`~flowkernel.json_values.json_ready` makes them) and as JSON text; any other status is an error
    result (``isError``) carrying the error records. The run id and status are in ``_meta``."""
    meta = {RUN_ID_KEY: result.run_id, STATUS_KEY: str(result.status)}
    if result.status is RunStatus.SUCCEEDED:
        outputs = json_ready(result.outputs)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(outputs, ensure_ascii=False))],
            structured_content=outputs,
            is_error=False,
            _meta=meta,
        )
    report = {
        "run_id": result.run_id,
        "flow": result.flow_name,
        "status": str(result.status),
        "reason": result.reason,
        "errors": [_error_record(error) for error in _all_errors(result)],
        "outputs": json_ready(result.outputs),
    }
    summary = f"run {result.run_id} of flow {result.flow_name!r} {result.status}"
    return types.CallToolResult(
        content=[
            types.TextContent(type="text", text=summary),
            types.TextContent(type="text", text=json.dumps(report, ensure_ascii=False)),
        ],
        is_error=True,
        _meta=meta,
    )


def error_result(message: str, run_id: str | None = None) -> types.CallToolResult:
    """A call that could not run (arguments that do not fit the flow, a tool the driver cannot run): an
    error result the model can read and correct, not a protocol error."""
    meta = {RUN_ID_KEY: run_id} if run_id is not None else None
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True, _meta=meta)


def _all_errors(result: ExecutionResult) -> list[Any]:
    """The errors of the failed steps, a sub-flow's or map step's own steps' included (their records say
    where: ``report/each[2]``)."""
    found = []
    for step in result.steps:
        if step.status is StepStatus.FAILED and step.error is not None:
            found.append((step.id, step.error))
        if step.subflow is not None:
            found += [(f"{step.id}/{where}", error) for where, error in _all_errors(step.subflow)]
    return found


def _error_record(found: tuple[str, Any]) -> dict[str, Any]:
    where, error = found
    return {"step": where, "kind": str(error.kind), "type": error.type, "message": error.message}


def partial_summary(result: ExecutionResult | None) -> str:
    """A stopped run's partial result in one line: what finished, and its outputs so far."""
    if result is None:
        return "no partial result"
    done = [step.id for step in result.steps if step.status is StepStatus.SUCCEEDED]
    cancelled = [step.id for step in result.steps if step.status is StepStatus.CANCELLED]
    return (
        f"{len(done)} of {len(result.steps)} steps succeeded ({', '.join(done) or 'none'}), "
        f"{len(cancelled)} cancelled ({', '.join(cancelled) or 'none'}); partial result: "
        + json.dumps(result.canonical(), ensure_ascii=False)
    )
