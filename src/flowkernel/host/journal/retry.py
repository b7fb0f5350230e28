"""Resuming a finished run that failed: re-run what failed, keep what succeeded.

A retry appends a **marker** entry to the run's record and clears its end: the record stays
append-only, and what follows the marker is a new **segment**, a fresh kernel run of the same flow,
inputs and options. In that segment every call of a step that succeeded in the segment before is
answered from that segment's record (the tool is not called; the answer is recorded again, as any
completion is), and every other call runs: the steps that failed, were cancelled, or were skipped
because of them. Replaying a segment is replaying any record, so ``show``, resume after a crash during
the retry, and the determinism checks work unchanged; the result is the latest segment's.

Call ids restart in each segment (``"fetch@1"`` again): a re-run step's attempts are the new segment's,
and its earlier attempts stay in the record before the marker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...errors import JournalError
from ...kernel.inputs import prepare_inputs
from ...kernel.run import RunState, drive
from ...model.flow import Flow
from ...protocol import Cancel, Cancelled, Completion, Invoke, StartTimer
from ...result import ExecutionResult, StepStatus
from ..backend import Backend
from ..world import CallWorld
from .base import Entry, Journal, RunHeader

__all__ = ("RETRY_MARK", "MemoBackend", "memo_of", "retry_failed", "segments")

RETRY_MARK = "#retry-failed"
"""The command digest of a marker entry (no kernel command looks like it: digests start with a call id)."""


def is_marker(entry: Entry) -> bool:
    return not entry.completions and entry.issued == (RETRY_MARK,)


def segments(entries: Sequence[Entry]) -> list[tuple[Entry, ...]]:
    """The record split at its markers: the first run, then one segment per retry."""
    found: list[list[Entry]] = [[]]
    for entry in entries:
        if is_marker(entry):
            found.append([])
        else:
            found[-1].append(entry)
    return [tuple(segment) for segment in found]


def retry_failed(journal: Journal, run_id: str) -> bool:
    """Mark run ``run_id`` for a retry of what did not succeed, to take effect when it is next resumed.
    Returns ``False`` (and changes nothing) if the run succeeded or has not finished (resume it as it is);
    :class:`~flowkernel.host.journal.RunLeasedError` if it is being executed elsewhere."""
    reopen = getattr(journal, "reopen", None)
    if reopen is None:
        raise JournalError(f"{type(journal).__name__} cannot retry runs (it has no reopen())")
    return bool(reopen(run_id, RETRY_MARK))


def replay_segment(flow: Flow, header: RunHeader, entries: Sequence[Entry]) -> ExecutionResult | None:
    """The result ``entries`` end with (one segment, from a fresh kernel), or ``None`` if they stop before."""
    from .recorder import options_of  # the recorder imports this module

    kernel = drive(RunState(flow, prepare_inputs(flow, header.inputs), options_of(header)))
    try:
        kernel.send(None)  # type: ignore[arg-type]
        for entry in entries:
            kernel.send(entry.completions)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    return None


def memo_of(flow: Flow, header: RunHeader, previous: Sequence[Entry]) -> dict[str, Completion]:
    """What a retry answers without calling a tool: every completion of the previous segment that belongs
    to a step that succeeded there (at any depth: an element of a map step that failed as a whole)."""
    result = replay_segment(flow, header, previous)
    if result is None:
        raise JournalError(f"run {header.run_id!r}: the run before its retry did not finish: its record is damaged")
    memo: dict[str, Completion] = {}
    for entry in previous:
        for completion in entry.completions:
            call_id: str = completion.call_id  # type: ignore[union-attr]
            if _succeeded(result, call_id):
                memo[call_id] = completion
    return memo


def _succeeded(result: ExecutionResult, call_id: str) -> bool:
    """Whether ``call_id`` (``"step@2/timeout"``, ``"sub/step@1"``) is a call of a step that succeeded."""
    current = result
    for part in call_id.split("/"):
        name, at, _ = part.partition("@")
        try:
            step = current.step(name)
        except KeyError:
            return False
        if step.status == StepStatus.SUCCEEDED:
            return True
        if at or step.subflow is None:
            return False
        current = step.subflow
    return False


class MemoBackend(Backend):
    """The driver's backend, with the calls of a retry's kept steps answered from the record: an answer
    is posted when the kernel issues the call, a recorded ``Cancelled`` when the kernel cancels it."""

    def __init__(self, inner: Backend, memo: dict[str, Completion]) -> None:
        self._inner = inner
        self._memo = dict(memo)
        self._held: set[str] = set()

    @property
    def world(self) -> CallWorld:
        return self._inner.world

    @world.setter
    def world(self, value: CallWorld) -> None:
        self._inner.world = value

    @property
    def clock(self) -> Callable[[], float]:
        return self._inner.clock

    def _served(self, call_id: str) -> bool:
        answer = self._memo.pop(call_id, None)
        if answer is None:
            return False
        if type(answer) is Cancelled:
            self._held.add(call_id)  # answered once the kernel cancels it, as it did the first time
        else:
            self._inner.post(answer)
        return True

    def start_invoke(self, command: Invoke) -> None:
        if not self._served(command.call_id):
            self._inner.start_invoke(command)

    def start_timer(self, command: StartTimer) -> None:
        if not self._served(command.call_id):
            self._inner.start_timer(command)

    def cancel(self, command: Cancel) -> None:
        if command.call_id in self._held:
            self._held.discard(command.call_id)
            self._inner.post(Cancelled(command.call_id))
        else:
            self._inner.cancel(command)

    def post(self, completion: Completion) -> None:
        self._inner.post(completion)

    def take(self) -> list[Completion]:
        return self._inner.take()

    def is_live(self, call_id: str) -> bool:
        return call_id in self._held or self._inner.is_live(call_id)

    def complete(self, completion: Completion) -> None:
        self._inner.complete(completion)

    def __getattr__(self, name: str) -> object:  # anything a driver's own backend adds
        return getattr(self._inner, name)
