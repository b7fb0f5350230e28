"""The driver loop, written once: every driver wraps a :class:`KernelSession` around its backend.

A driver's own loop is then a few lines, identical in shape for sync and async code::

    opened = open_run(flow, inputs, settings)  # journal I/O: async drivers run it in a thread
    session = KernelSession(flow, opened.inputs, backend, recorder=opened.recorder, **opened.settings)
    with session.guard():
        session.start()
        while session.running:
            session.feed(backend.wait())        # async: record in a thread, then consume
        session.record_result()

With a journal, every batch is recorded before the kernel consumes it (write-ahead), and a resumed run
is replayed from its record first (see :mod:`flowkernel.host.journal`).

``guard`` handles caller cancellation (Ctrl-C, task cancellation, a trio cancel scope) the same way
everywhere: the kernel is told to stop, in-flight calls are cancelled, and the partial result is
attached to the exception as ``partial_result`` before it propagates.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Unpack

from ..errors import ProtocolError
from ..events import RunFinished, RunStarted
from ..kernel import RunOptions
from ..kernel.inputs import prepare_inputs
from ..kernel.run import RunState, drive
from ..model.flow import Flow
from ..model.tool import IDEMPOTENCY_KEY
from ..protocol import Cancel, Cancelled, Command, Completion, Invoke, StartTimer, StopRun
from ..result import ExecutionResult
from .backend import Backend
from .settings import RunSettings
from .settings_check import check_run_settings
from .world import CallWorld, declared_resources, opened_resources

if TYPE_CHECKING:
    from .journal.recorder import RunRecorder

__all__ = ("KernelSession", "idempotency_key", "new_run_id", "partial_result")


def new_run_id() -> str:
    """A fresh random run id, 32 hex digits (the kernel itself never makes one up: that would not be
    pure). The 128 random bits ``uuid4().hex`` would give, without building a ``UUID`` (a fifth of the
    cost of a one-step run)."""
    return os.urandom(16).hex()


def idempotency_key(run_id: str, command: Invoke) -> str:
    """The key a tool gets for ``command``: the same for every attempt and every resume of the step
    (so a service dedupes a retried side effect); a fallback tool's differs from the step tool's."""
    return f"{run_id}/{command.step_id}" + ("/fallback" if command.call_id.endswith("@fallback") else "")


def partial_result(exc: BaseException) -> ExecutionResult | None:
    """The partial result a driver attached to a cancellation exception or to one in its chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        result = getattr(current, "partial_result", None)
        if isinstance(result, ExecutionResult):
            return result
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class KernelSession:
    """One run: a kernel generator, the backend executing its commands, and the result at the end."""

    def __init__(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None,
        backend: Backend,
        *,
        recorder: RunRecorder | None = None,
        **settings: Unpack[RunSettings],
    ) -> None:
        check_run_settings(settings, flow.name)  # RunOptionsError before anything runs, on every driver
        if settings.get("journal") is not None and recorder is None:
            raise ValueError("a journaled run must be opened first: pass open_run(...).recorder as recorder=")
        self.recorder = recorder
        self.on_event = settings.get("on_event")
        self.options = RunOptions(
            run_id=settings.get("run_id") or new_run_id(),
            max_concurrency=settings.get("max_concurrency"),
            deadline=settings.get("deadline"),
            fail_fast=settings.get("fail_fast", False),
            events=self.on_event is not None,
        )
        self.backend = backend if recorder is None else recorder.wrap(backend)  # a retry answers kept calls
        self.resources = declared_resources(flow, settings.get("resources") or ())
        """The resources the driver opens for the run (the flow's, its sub-flows', the run's own)."""
        self.middleware = tuple(settings.get("middleware") or ())
        cache = settings.get("cache")
        if cache is not None:  # innermost: the other middleware (access control, tracing) see every call
            from .cache.middleware import step_cache

            self.middleware = (*self.middleware, step_cache(cache))
        if self.middleware:
            self.enter_world({})
        self.result: ExecutionResult | None = None
        self.stopped_by: BaseException | None = None
        self._state = RunState(flow, prepare_inputs(flow, inputs), self.options)
        self._kernel = drive(self._state)
        self._started = False
        self._kernel_failed = False
        self._not_started: list[str] = []  # calls the kernel issued that the backend never started
        self._unconsumed: Sequence[Completion] = ()  # recorded (or being recorded), not yet consumed

    def enter_world(self, resources: Mapping[str, Any]) -> None:
        """The run's resources are open: every call from now on gets them, and the run's middleware."""
        self.backend.world = CallWorld(resources, self.middleware)

    @asynccontextmanager
    async def opened_world(self) -> AsyncIterator[None]:
        """Open the run's resources in the current task for the block (nothing to do without any)."""
        if not self.resources:
            yield
            return
        async with opened_resources(self.resources, self.flow) as values:
            self.enter_world(values)
            yield

    @property
    def flow(self) -> Flow:
        """The flow this session runs."""
        return self._state.flow

    @property
    def running(self) -> bool:
        """True until the kernel has returned its result."""
        return self.result is None

    def start(self) -> None:
        """Ask the kernel for its first batch (after replaying the journal, when resuming) and start it."""
        commands = self._prime()
        recorder = self.recorder
        if recorder is not None and recorder.history:
            commands = self._replay(recorder, commands)
        if recorder is not None:
            recorder.issued(commands)
        self._dispatch(commands)

    def feed(self, completions: Sequence[Completion]) -> None:
        """Record completions (if journaled), send them to the kernel, start the commands it answers with."""
        self._unconsumed = completions  # hold(), record() and consume(), inlined: this runs once per batch
        recorder = self.recorder
        if recorder is not None:
            recorder.append(completions, self._state.succeeded)
        self._unconsumed = ()
        commands = self._send(completions)
        if recorder is not None:
            recorder.issued(commands)
        self._dispatch(commands)

    def hold(self, completions: Sequence[Completion]) -> None:
        """Keep a batch taken from the backend until the kernel has it: a stop that lands while the batch
        is being recorded feeds it to the kernel with the stop, so no call goes unanswered."""
        self._unconsumed = completions

    def record(self, completions: Sequence[Completion]) -> None:
        """Write completions to the journal (blocking I/O: async drivers call this in a thread)."""
        self.recorder.append(completions, self._state.succeeded)  # type: ignore[union-attr]

    def consume(self, completions: Sequence[Completion]) -> None:
        """Send recorded completions to the kernel and start the commands it answers with."""
        self._unconsumed = ()
        commands = self._send(completions)
        if self.recorder is not None:
            self.recorder.issued(commands)
        self._dispatch(commands)

    def record_result(self) -> None:
        """Write the result to the journal, once the run has finished (blocking I/O)."""
        if self.recorder is not None and self.result is not None:
            self.recorder.finish(self.result)

    def _replay(self, recorder: RunRecorder, first: list[Command]) -> list[Command]:
        """Replay the journal, then start again the calls that were in flight when its record ends."""
        from .journal.replay import record_cut_short, replay_entries  # here: the journal package imports this module

        try:
            replayed = replay_entries(
                self.options.run_id, recorder.history, first, self._send, lambda: not self.running
            )
            if recorder.finished and self.running:  # resuming would re-run calls of a finished run
                raise record_cut_short(recorder.journal, self.options.run_id)
        except BaseException:
            self._kernel_failed = True  # nothing was started: there is nothing to stop
            raise
        self._dispatch(replayed.restart)  # type: ignore[arg-type]
        for call_id in replayed.cancelled:
            self.backend.post(Cancelled(call_id))
        return replayed.commands

    def finished_result(self) -> ExecutionResult:
        """The result of a run that has finished."""
        if self.result is None:
            raise RuntimeError("the run has not finished")
        return self.result

    def _prime(self) -> list[Command]:
        """Start the kernel generator (announcing the run to listeners); its first batch of commands."""
        self._started = True
        if self.on_event is not None:
            flow = self._state.flow
            anchor = RunStarted(self.options.run_id, "", flow.name, flow.version, self.backend.clock(), time.time())
            self.on_event(anchor)
        return self._send(None)

    def _send(self, completions: Sequence[Completion] | None) -> list[Command]:
        """One step of the kernel; the events it emitted are delivered before its commands start."""
        try:
            commands = self._kernel.send(completions)  # type: ignore[arg-type]
        except StopIteration as stop:
            self.result = stop.value
            if self.on_event is not None:
                self._deliver_events()
                self.on_event(RunFinished(self.options.run_id, "", stop.value, self.backend.clock()))
            return []
        except BaseException:
            self._kernel_failed = True
            raise
        if self.on_event is not None and self._state.events:
            try:
                self._deliver_events()
            except BaseException:  # a listener raised: none of the batch started, the abort answers for it
                self._not_started = [c.call_id for c in _calls_started_by(commands)]
                raise
        return commands

    def _deliver_events(self) -> None:
        """Hand the kernel's new events to the listener, stamped with the driver's clock (``time`` is the
        last field of every event the kernel makes; rebuilt without ``_replace``, which costs 10x more)."""
        events = self._state.events
        batch = events[:]
        events.clear()
        stamp = (self.backend.clock(),)
        listener = self.on_event
        assert listener is not None
        new = tuple.__new__
        for event in batch:
            listener(new(type(event), event[:-1] + stamp))

    def _dispatch(self, commands: list[Command]) -> None:
        backend = self.backend
        done = 0
        try:
            for command in commands:
                kind = type(command)
                if kind is Invoke:
                    if command[2].idempotency_key:  # type: ignore[misc]  # Invoke.tool (by position: see call_sync)
                        key = idempotency_key(self.options.run_id, command)  # type: ignore[arg-type]
                        command = command._replace(arguments={**command.arguments, IDEMPOTENCY_KEY: key})  # type: ignore[union-attr, call-arg]
                    backend.start_invoke(command)  # type: ignore[arg-type]
                elif kind is StartTimer:
                    backend.start_timer(command)  # type: ignore[arg-type]
                else:
                    backend.cancel(command)  # type: ignore[arg-type]
                done += 1
        except BaseException:  # the rest of the batch never started: the abort answers for it
            self._not_started = [
                c.call_id for c in _calls_started_by(commands[done:]) if not backend.is_live(c.call_id)
            ]
            raise

    def guard(self) -> AbstractContextManager[None]:
        """On any exception while the run is live, stop it and attach the partial result."""
        return _Guard(self)

    def _stopped(self, exc: BaseException) -> None:
        """The body of :meth:`guard` raised ``exc``: stop the run, attach its partial result."""
        self.stopped_by = exc
        try:
            if self.result is None and not self._kernel_failed:
                self._abort(f"{type(exc).__name__} in the caller")
                exc.partial_result = self.result  # type: ignore[attr-defined]
                exc.add_note(f"flowkernel: run {self.options.run_id} stopped; its partial result is on .partial_result")
        finally:
            if self.recorder is not None:  # the run is no longer executed here: give up its lease
                self.recorder.release()

    def unwrap(self, group: BaseExceptionGroup[Any], cancellation: type[BaseException]) -> BaseException:
        """The exception that stopped the run, if a task group merely wrapped it with cancellations.

        Async drivers run inside a task group or nursery, which wraps what the body raised; the caller
        should see the ``Cancelled``/``KeyboardInterrupt``/``ProtocolError`` itself (with the partial
        result on it), not a group. One other exception (a ``KeyboardInterrupt`` a task raised, which
        cancelled the body) is what stopped the run: it is raised, with the partial result. More keep
        the group, which carries the partial result too.
        """
        primary = self.stopped_by
        if primary is None:
            return group
        rest = group.subgroup(
            lambda e: not isinstance(e, BaseExceptionGroup) and e is not primary and not isinstance(e, cancellation)
        )
        if rest is None:
            return primary
        leaves = _leaves(rest)
        chosen: BaseException = leaves[0] if len(leaves) == 1 else group
        if self.result is not None and partial_result(chosen) is None:
            chosen.partial_result = self.result  # type: ignore[attr-defined]
        return chosen

    def _consume_while_stopping(self) -> list[Command]:
        """Completions that arrived as the run stops: fed to the kernel, and (journaled) recorded like any
        batch, so the journal counts them and a resume does not run their calls again. Not when a batch
        was still being recorded: whether that write landed is unknown, and the record must not skip it."""
        taken = self.backend.take()
        if not taken:
            return []
        if self._unconsumed:
            self._unconsumed = [*self._unconsumed, *taken]
            return []
        commands = self._send(taken)
        if self.recorder is not None:
            try:
                self.recorder.append(taken, self._state.succeeded)
                self.recorder.issued(commands)
            except Exception:  # the journal failed as the run stops: the stop's own error is what goes up
                pass
        return commands

    def _abort(self, reason: str) -> None:
        """Finish the run synchronously: stop the kernel, cancel every live call, feed the answers.

        Nothing the kernel issues from here on is started: a call or timer it starts while stopping (a
        retry's backoff, when a failure arrives in the same batch as the stop) is answered ``Cancelled``
        at once, so every driver's abort ends with the partial result, never waiting for an answer.
        """
        never_started = [Cancelled(call_id) for call_id in self._not_started]
        if not self._started:  # prime the generator; its first commands are answered as cancelled
            never_started = [Cancelled(c.call_id) for c in _calls_started_by(self._prime())]
        commands = self._consume_while_stopping()
        if self.result is None:
            commands += self._send([*self._unconsumed, StopRun(reason)])
        while self.result is None:
            for command in commands:
                if isinstance(command, Cancel):
                    self.backend.cancel(command)
            never_started += [Cancelled(c.call_id) for c in _calls_started_by(commands)]
            answers = [*self.backend.take(), *never_started]
            never_started = []
            if not answers:
                raise ProtocolError(
                    f"backend {type(self.backend).__name__} did not answer the cancellation of {commands}"
                )
            commands = self._send(answers)


class _Guard:
    """:meth:`KernelSession.guard`. A context manager class rather than a ``@contextmanager`` generator:
    it is entered on every run, and the generator's machinery costs several times what it does. The
    exception goes on up (``__exit__`` returns nothing), with anything ``_stopped`` raised chained to it."""

    __slots__ = ("_session",)

    def __init__(self, session: KernelSession) -> None:
        self._session = session

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if exc is not None:
            self._session._stopped(exc)


def _leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    """The exceptions in a group and its nested groups."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        found += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return found


def _calls_started_by(commands: list[Command]) -> list[Invoke | StartTimer]:
    """The commands in a batch that start a call (not cancellations)."""
    return [c for c in commands if type(c) is Invoke or type(c) is StartTimer]
