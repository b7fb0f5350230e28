"""Opening a journaled run (new or resumed) and recording it as it goes, write-ahead.

The session records each batch of completions before the kernel consumes it, together with the digest
of the commands the kernel issued just before; replay checks those digests to detect non-determinism.
A caller's stop (``StopRun``) ends the record: the run stays resumable from the point before it.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import FlowChangedError, JournalWriteError, Problem, ResumeError, RunExistsError, RunNotFoundError
from ...kernel.inputs import prepare_inputs
from ...kernel.options import RunOptions
from ...model.flow import Flow
from ...protocol import Cancel, Command, Completion, Invoke, StartTimer, StopRun
from ...result import ExecutionResult
from ..backend import Backend
from ..session import new_run_id
from ..settings import RunSettings
from ..settings_check import check_run_settings
from .base import Entry, Journal, RecordedRun, RunHeader
from .declared import declared_classes
from .errors import UnstorableValueError
from .fingerprint import flow_fingerprint
from .retry import memo_of, segments

__all__ = ("OpenedRun", "RunRecorder", "check_flow", "digest", "fingerprint_of", "open_run", "options_of")


def digest(commands: Sequence[Command]) -> list[str]:
    """What replay compares: each command's kind, call id and tool or duration (events are left out)."""
    out: list[str] = []
    for command in commands:
        kind = type(command)
        if kind is Invoke:
            out.append(f"{command.call_id} {command.tool.name}")  # type: ignore[union-attr]
        elif kind is StartTimer:
            out.append(f"{command.call_id} timer {command.seconds!r}")  # type: ignore[union-attr]
        elif kind is Cancel:
            out.append(f"{command.call_id} cancel")
    return out


class RunRecorder:
    """Appends one run's batches to its journal; ``history`` holds what an earlier process recorded."""

    def __init__(
        self,
        journal: Journal,
        run_id: str,
        recorded: RecordedRun | None = None,
        *,
        history: tuple[Entry, ...] | None = None,
        memo: dict[str, Completion] | None = None,
    ) -> None:
        self.journal = journal
        self.run_id = run_id
        entries = recorded.entries if recorded is not None else ()
        self.history: tuple[Entry, ...] = entries if history is None else history
        """The entries to replay: the record's latest segment (after its last retry marker, if any)."""
        self.memo = memo or {}
        """In a retry: the answers of the calls of steps that succeeded before it (see :mod:`.retry`)."""
        self.finished = recorded is not None and recorded.status is not None
        self.stopped = False
        self._seq = len(entries)
        self._issued: list[str] = []
        self._released = False

    def wrap(self, backend: Backend) -> Backend:
        """The backend the session drives: in a retry, one that answers kept steps' calls from the record."""
        if not self.memo:
            return backend
        from .retry import MemoBackend

        return MemoBackend(backend, self.memo)

    def issued(self, commands: Sequence[Command]) -> None:
        """Note the commands the kernel just issued (recorded with the next batch)."""
        self._issued += digest(commands)

    def append(self, batch: Sequence[Completion], steps_done: int) -> None:
        """Record ``batch`` durably; the part after a ``StopRun`` is not recorded, nor anything later."""
        if self.stopped:
            return
        kept = batch
        for position, completion in enumerate(batch):
            if type(completion) is StopRun:
                kept, self.stopped = batch[:position], True
                break
        if not kept:
            return
        entry = Entry(self._seq, tuple(self._issued), tuple(kept))
        try:
            self.journal.append(self.run_id, entry, steps_done)
        except Exception as exc:
            calls = ", ".join(getattr(c, "call_id", "?") for c in kept)
            kind = type(exc) if isinstance(exc, UnstorableValueError) else JournalWriteError
            raise kind(
                f"run {self.run_id!r}: cannot record the completions of {calls}: {type(exc).__name__}: {exc}"
            ) from exc
        self._seq += 1
        self._issued = []

    def finish(self, result: ExecutionResult) -> None:
        """Record the result, unless the record was stopped (the run stays resumable) or already has one;
        the run's lease is released either way."""
        try:
            if not self.stopped and not self.finished:
                self.journal.finish(self.run_id, result)
                self.finished = True
        finally:
            self.release()

    def release(self) -> None:
        """Give up the run's lease (once; the session calls it however the run ends)."""
        if not self._released:
            self._released = True
            self.journal.release(self.run_id)


@dataclass(frozen=True, slots=True)
class OpenedRun:
    """A run ready for a :class:`KernelSession`: its inputs and settings (from the journal when
    resuming) and the recorder, if it is journaled."""

    inputs: Mapping[str, Any] | None
    settings: RunSettings
    recorder: RunRecorder | None


_DECIDING = ("max_concurrency", "deadline", "fail_fast")

_fingerprints: dict[int, tuple[weakref.ref[Flow], str]] = {}


def fingerprint_of(flow: Flow) -> str:
    """:func:`flow_fingerprint`, computed once per flow object: hashing a flow's structure costs
    ~8 µs a step, as much as recording the step, and a service runs the same flow object many times.
    A flow is frozen once built (the kernel runs the plan compiled then), so its hash cannot go stale."""
    key = id(flow)
    cached = _fingerprints.get(key)
    if cached is not None and cached[0]() is flow:
        return cached[1]
    value = flow_fingerprint(flow)
    _fingerprints[key] = (weakref.ref(flow, lambda _: _fingerprints.pop(key, None)), value)
    return value


def open_run(flow: Flow, inputs: Mapping[str, Any] | None, settings: RunSettings) -> OpenedRun:
    """Start a journaled run (write its header) or load one to resume; blocking I/O, so async drivers
    call it in a worker thread. Without a journal it does nothing."""
    check_run_settings(settings, flow.name)  # before anything is read from the settings or journaled
    journal = settings.get("journal")
    run_id = settings.get("run_id")
    if journal is None:
        if settings.get("resume"):
            raise ValueError("resume=True needs the journal to resume from: pass journal=")
        return OpenedRun(inputs, settings, None)
    journal.allow(declared_classes(flow))
    if not settings.get("resume"):
        return _start(flow, inputs, settings, journal, run_id or new_run_id())
    if not run_id:
        raise ValueError("resume=True needs the run_id of the run to resume")
    if inputs is not None:  # start or resume: the run is started if the journal holds none under its id
        try:
            journal.acquire(run_id)
        except RunNotFoundError:
            try:
                return _start(flow, inputs, settings, journal, run_id)
            except RunExistsError:  # another process started it just now: resume it (if it is not running)
                journal.acquire(run_id)
    else:
        try:
            journal.acquire(run_id)  # before reading the record: no other process appends to it from here on
        except RunNotFoundError as exc:
            raise RunNotFoundError(
                f"{exc}; to start it if it is not there, pass its inputs with resume=True (start or resume)"
            ) from None
    try:
        recorded = journal.load(run_id)
        header = recorded.header
        check_flow(flow, header, settings.get("allow_flow_change", False))
        problems: list[Problem] = []  # every one at once
        if inputs is not None and not _same(dict(inputs), dict(header.inputs)):
            message = (
                f"the run started with other inputs ({_shown(header.inputs)}, not {_shown(inputs)}): resume it"
                " without inputs, or start a run with another id"
            )
            problems.append(Problem("inputs", message))
        for name in _DECIDING:
            if name in settings and settings[name] != getattr(header, name):  # type: ignore[literal-required]
                message = (
                    f"the run started with {name}={getattr(header, name)!r}; a resumed run keeps the options "
                    f"that decide what runs (got {name}={settings[name]!r})"  # type: ignore[literal-required]
                )
                problems.append(Problem(name, message))
        if problems:
            raise ResumeError(run_id, tuple(problems))
        parts = segments(recorded.entries)
        memo = memo_of(flow, header, parts[-2]) if len(parts) > 1 else None
    except BaseException:
        journal.release(run_id)
        raise
    resumed: RunSettings = {**settings, **{name: getattr(header, name) for name in _DECIDING}}  # type: ignore[typeddict-item]
    return OpenedRun(header.inputs, resumed, RunRecorder(journal, run_id, recorded, history=parts[-1], memo=memo))


def _start(
    flow: Flow, inputs: Mapping[str, Any] | None, settings: RunSettings, journal: Journal, run_id: str
) -> OpenedRun:
    """Record a new run's header (leased to this journal) and open it."""
    options = RunOptions(
        run_id=run_id,
        max_concurrency=settings.get("max_concurrency"),
        deadline=settings.get("deadline"),
        fail_fast=settings.get("fail_fast", False),
    )
    prepare_inputs(flow, inputs)  # bad inputs are refused before anything is recorded
    journal.begin(
        RunHeader(
            options.run_id,
            flow.name,
            flow.version,
            fingerprint_of(flow),
            dict(inputs or {}),
            options.max_concurrency,
            options.deadline,
            options.fail_fast,
            settings.get("flow_source"),
        )
    )
    return OpenedRun(inputs, {**settings, "run_id": options.run_id, "resume": False}, RunRecorder(journal, run_id))


def _same(given: Any, recorded: Any) -> bool:
    """Inputs equal to the recorded ones (``nan`` equal to ``nan``, as the journal gives it back)."""
    return bool(given == recorded) or repr(given) == repr(recorded)


def _shown(inputs: Mapping[str, Any]) -> str:
    text = repr(dict(inputs))
    return text if len(text) <= 200 else text[:197] + "..."


def options_of(header: RunHeader) -> RunOptions:
    """The options a recorded run ran with."""
    return RunOptions(header.run_id, header.max_concurrency, header.deadline, header.fail_fast)


def check_flow(flow: Flow, header: RunHeader, allow_change: bool) -> None:
    """Refuse to resume ``header``'s run with ``flow`` if its structure changed, unless allowed."""
    if allow_change or (flow.name == header.flow_name and fingerprint_of(flow) == header.flow_hash):
        return
    what = (
        f"flow {flow.name!r} is not the flow {header.flow_name!r} the run started with"
        if flow.name != header.flow_name
        else f"the structure of flow {flow.name!r} changed since the run started"
        f" (version {header.flow_version!r} then, {flow.version!r} now)"
    )
    raise FlowChangedError(
        f"cannot resume run {header.run_id!r}: {what}. Replaying it could re-run or skip calls;"
        " pass allow_flow_change=True (CLI: --allow-flow-change) to resume anyway; replay still checks each step"
    )
