"""The Dask driver: the kernel runs in the client process, each invoke is a task on a Dask cluster.

With no scheduler address the driver starts an in-process ``LocalCluster`` (threads, no extra processes)
the first time it runs a flow, and keeps it, with one client, for every later run until :meth:`close`;
given an address it connects to that cluster instead. The client lives on an event loop of its own, in a
helper thread: ``run_blocking`` runs there, and ``await driver.run(...)`` from another asyncio loop hands
the run over to it (cancelling the awaiting task cancels the run, with the partial result attached).

Everything but sending calls away is the asyncio driver's: the backend subclasses its backend (timers on
the client's loop, the completion queue) and the driver loop is :meth:`AsyncDriver.drive`. Sync tools run
in the workers' thread pools, async tools on the workers' event loops, both through ``call_sync`` and
``call_async`` so ``current_invoke()`` works inside them. Tools are pickled, and for a cluster in other
processes loaded on every worker, before a run starts: a tool that cannot be shipped is refused with
:class:`UnshippableToolError` naming it. A worker that dies under a call makes the scheduler run it
again elsewhere, up to its ``allowed-failures``; past that the call fails with ``KilledWorker``, a tool
error the step's retry and error policies handle like any other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import logging
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, NamedTuple, Unpack

from distributed import Client, Future, LocalCluster
from distributed.protocol import pickle
from distributed.utils import LoopRunner

from flowkernel import Completion, ExecutionResult, Flow, Invoke, Raised, Returned
from flowkernel.errors import Problem
from flowkernel.host import (
    KernelSession,
    RunSettings,
    UnsupportedToolError,
    call_async,
    call_sync,
    check_tools_fit,
    partial_result,
    raised,
)
from flowkernel.model.tool import Tool
from flowkernel.result import ErrorInfo, ErrorKind
from flowkernel_asyncio import AsyncioBackend, AsyncioDriver

__all__ = ("DEFAULT_THREADS", "DaskDriver", "Shipped", "ToolReference", "UnshippableToolError")

DEFAULT_THREADS = 32
"""Worker threads of the embedded in-process cluster: sync tools that block (on I/O) each hold one."""

_SHIPPED_CACHE = 4096  # tools already checked, per driver (a parity suite builds thousands)


class UnshippableToolError(UnsupportedToolError):
    """Tools that cannot be sent to the Dask workers (not picklable, or not importable there).

    Raised before the run starts; ``problems`` names each tool and where the flow uses it.
    """

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        super().__init__("dask", problems)


class DaskDriver(AsyncioDriver):
    """Runs flows with every tool call as a task on one Dask cluster, reused across runs.

    ``scheduler`` is the address of a running cluster's scheduler (``tcp://host:8786``); without it an
    embedded ``LocalCluster`` is started on first use: in-process (``processes=False``, one worker with
    :data:`DEFAULT_THREADS` threads) unless ``processes=True``. ``n_workers``, ``threads_per_worker`` and
    ``cluster_options`` go to ``LocalCluster``. Use the driver as a context manager, or call
    :meth:`close`, to shut the client (and the embedded cluster) down.
    """

    name = "dask"

    def __init__(
        self,
        scheduler: str | None = None,
        *,
        processes: bool = False,
        n_workers: int | None = None,
        threads_per_worker: int | None = None,
        **cluster_options: Any,
    ) -> None:
        super().__init__()
        if scheduler is not None and (processes or n_workers or threads_per_worker or cluster_options):
            raise ValueError("cluster options apply to the embedded LocalCluster, not to a scheduler address")
        self.scheduler = scheduler
        self.processes = processes
        self._cluster_options: dict[str, Any] = {
            "processes": processes,
            "n_workers": n_workers if n_workers is not None else (None if processes else 1),
            "threads_per_worker": threads_per_worker or (None if processes else DEFAULT_THREADS),
            "dashboard_address": "127.0.0.1:0",  # a free port on this machine only (8787 may be taken)
            "silence_logs": logging.ERROR,  # a cancelled call logs a warning on its worker: expected here
            **cluster_options,
        }
        self._lock = threading.Lock()
        self._runner: LoopRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._cluster: LocalCluster | None = None
        self._client: Client | None = None
        self._shipped: dict[int, tuple[Tool, Shipped]] = {}  # id -> (the tool, held: its id stays unique; what to send)

    # ---- the cluster, the client and their loop ---------------------------------------------------

    @property
    def client(self) -> Client:
        """The asynchronous ``distributed.Client`` (started on first use); use it only on :attr:`loop`."""
        self._start()
        assert self._client is not None
        return self._client

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop the client lives on, in a helper thread (started on first use)."""
        return self._start()

    def _start(self) -> asyncio.AbstractEventLoop:
        """Start the loop thread, the embedded cluster (if no address was given) and the client, once."""
        with self._lock:
            if self._loop is not None:
                return self._loop
            runner = LoopRunner(asynchronous=False)
            runner.start()
            loop: asyncio.AbstractEventLoop = runner.loop.asyncio_loop
            try:
                asyncio.run_coroutine_threadsafe(self._connect(), loop).result()
            except BaseException:
                runner.stop()
                raise
            self._runner, self._loop = runner, loop
            return loop

    async def _connect(self) -> None:
        self._loop_thread = threading.get_ident()
        if self.scheduler is None:
            self._cluster = await LocalCluster(asynchronous=True, **self._cluster_options)
            self._client = await Client(self._cluster, asynchronous=True)
        else:
            self._client = await Client(self.scheduler, asynchronous=True)

    async def _disconnect(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._cluster is not None:
            await self._cluster.close()  # type: ignore[misc]  # async with an asynchronous cluster
        self._client = self._cluster = None

    def close(self) -> None:
        """Close the client, and the embedded cluster if this driver started one; the driver can start again."""
        with self._lock:
            if self._loop is None or self._runner is None:
                return
            try:
                asyncio.run_coroutine_threadsafe(self._disconnect(), self._loop).result(timeout=30)
            finally:
                self._runner.stop()
                self._runner = self._loop = self._loop_thread = None
                self._shipped.clear()

    def __enter__(self) -> DaskDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- runs -----------------------------------------------------------------------------------------

    async def run(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        **settings: Unpack[RunSettings],
    ) -> ExecutionResult:
        """Run ``flow`` to the end on the cluster and return its result.

        Awaitable from any asyncio loop: the run itself always happens on the client's loop, and events
        (``on_event``) are delivered on the caller's loop.
        """
        check_tools_fit(flow, "asyncio")  # the workers run async tools on asyncio loops
        caller = asyncio.get_running_loop()
        if caller is self._loop:
            return await self._run_here(flow, inputs, settings)
        loop = self._loop if self._loop is not None else await asyncio.to_thread(self._start)
        listener = settings.get("on_event")
        if listener is not None:  # deliver events on the caller's loop, in order, before the result
            settings = {**settings, "on_event": lambda event: caller.call_soon_threadsafe(listener, event)}
        hosted = _Hosted(loop, self._run_here(flow, inputs, settings))
        outcome = asyncio.wrap_future(hosted.outcome)
        try:
            return await asyncio.shield(outcome)
        except asyncio.CancelledError as cancelled:  # the caller cancelled us: stop the run, keep its result
            hosted.cancel()
            try:
                await outcome
            except BaseException as stopped:  # the run's own CancelledError, with the partial result
                cancelled.partial_result = partial_result(stopped)  # type: ignore[attr-defined]
            raise

    async def _run_here(self, flow: Flow, inputs: Mapping[str, Any] | None, settings: RunSettings) -> ExecutionResult:
        """The run itself, on the client's loop."""
        assert self._client is not None
        await self._check_shippable(flow)
        opened = await self.open_run(flow, inputs, settings)
        backend = _DaskBackend(self._client, self._shipped)
        session = KernelSession(flow, opened.inputs, backend, recorder=opened.recorder, **opened.settings)
        try:
            return await self.drive(session, backend, asyncio.TaskGroup(), backend.attach)
        finally:
            backend.close()

    def start_loop(self, main: Callable[[], Awaitable[None]]) -> None:
        """Run ``main`` on the client's loop (not a new one: the client is bound to its loop) and wait.

        Ctrl-C while waiting cancels the run there and raises ``KeyboardInterrupt`` with the partial result.
        """
        loop = self._start()
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError("run_blocking() cannot be called from the Dask client's own loop; await run()")

        async def run_main() -> None:
            await main()

        hosted = _Hosted(loop, run_main())
        try:
            hosted.outcome.result()
        except KeyboardInterrupt as interrupt:
            hosted.cancel()
            stopped = hosted.outcome.exception()
            if stopped is not None:
                interrupt.partial_result = partial_result(stopped)  # type: ignore[attr-defined]
            raise

    # ---- shipping tools ------------------------------------------------------------------------------

    async def _check_shippable(self, flow: Flow) -> None:
        """Refuse, before the run, tools the workers could not receive: every tool is pickled here and, on
        a cluster in other processes, unpickled on every worker. Tools that passed are remembered."""
        fresh: dict[int, tuple[str, Tool, int]] = {}  # id -> (first place, tool, further places)
        for where, tool in flow.tools():
            if id(tool) in self._shipped:
                continue
            first = fresh.get(id(tool))
            fresh[id(tool)] = (where, tool, 0) if first is None else (first[0], tool, first[2] + 1)
        if not fresh:
            return
        problems: dict[int, str] = {}
        blobs: dict[int, bytes] = {}
        shipped: dict[int, Shipped] = {}
        for key, (_, tool, _) in fresh.items():
            shipped[key] = ToolReference.to(tool) or tool
            try:
                blobs[key] = pickle.dumps(shipped[key])
            except Exception as exc:
                problems[key] = f"cannot be pickled to send it to a Dask worker: {_describe(exc)}"
        if blobs:
            if self.scheduler is None and not self.processes:
                failures = _unpickle_failures(blobs)  # the workers share this process
            else:
                failures = await self._unpickle_on_the_workers(blobs)
            problems.update({key: f"cannot be loaded on a Dask worker: {text}" for key, text in failures.items()})
        if problems:
            raise UnshippableToolError(
                tuple(
                    Problem(where, f"tool {tool.name!r} {problems[key]}{_elsewhere(more)}")
                    for key, (where, tool, more) in fresh.items()
                    if key in problems
                )
            )
        if len(self._shipped) + len(fresh) > _SHIPPED_CACHE:
            self._shipped.clear()
        self._shipped.update({key: (tool, shipped[key]) for key, (_, tool, _) in fresh.items()})

    async def _unpickle_on_the_workers(self, blobs: dict[int, bytes]) -> dict[int, str]:
        """Load every pickled tool on every worker (out of band, all at once): workers may differ."""
        assert self._client is not None
        try:
            per_worker: dict[str, dict[int, str]] = await self._client.run(_unpickle_failures, blobs)
        except Exception as exc:
            problem = Problem("driver", f"the Dask workers could not run flowkernel-dask's check: {_describe(exc)}")
            raise UnshippableToolError((problem,)) from exc
        failures: dict[int, str] = {}
        for worker, failed in sorted(per_worker.items()):
            for key, text in failed.items():
                failures.setdefault(key, f"{text} (on {worker})")
        return failures


def _unpickle_failures(blobs: Mapping[int, bytes]) -> dict[int, str]:
    """Which pickled tools do not load here (on a worker), and why."""
    failures: dict[int, str] = {}
    for key, blob in blobs.items():
        try:
            _resolve(pickle.loads(blob))
        except Exception as exc:
            failures[key] = _describe(exc)
    return failures


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _elsewhere(more: int) -> str:
    return f" (and {more} other place{'s' * (more != 1)} in the flow)" if more else ""


# ---- what a worker receives ------------------------------------------------------------------------------


class ToolReference(NamedTuple):
    """A tool sent by name: the module-level attribute that holds it, imported on the worker.

    ``@tool`` rebinds a function's name to the :class:`Tool`, so pickle cannot find the function under
    its own name and cloudpickle would send a copy of its code and the globals it reads (a lock, a
    client: often unpicklable, and never the worker's own). A reference is what pickle does for a
    plain module-level function: the worker imports the module and takes the same object.
    """

    module: str
    qualname: str

    @classmethod
    def to(cls, tool: Tool) -> ToolReference | None:
        """A reference to ``tool`` if a module attribute named like its function holds it, else ``None``."""
        module = getattr(tool.fn, "__module__", None)
        qualname = getattr(tool.fn, "__qualname__", "")
        if not module or "<locals>" in qualname or module not in sys.modules:
            return None
        target: Any = sys.modules[module]
        for part in qualname.split("."):
            target = getattr(target, part, None)
        return cls(module, qualname) if target is tool else None

    def resolve(self) -> Tool:
        """The tool this names, importing its module if needed."""
        target: Any = importlib.import_module(self.module)
        for part in self.qualname.split("."):
            target = getattr(target, part)
        if not isinstance(target, Tool):
            raise TypeError(f"{self.module}.{self.qualname} is {type(target).__name__}, not a flowkernel Tool")
        return target


Shipped = Tool | ToolReference
"""What is sent for a tool: a reference where one works, else the tool, pickled (cloudpickle if needed)."""


def _resolve(shipped: Shipped) -> Tool:
    return shipped.resolve() if isinstance(shipped, ToolReference) else shipped


def _call_on_worker(
    shipped: Shipped, call_id: str, step_id: str, arguments: Mapping[str, Any], attempt: int
) -> Returned | Raised:
    """A sync tool, in a worker thread: any exception becomes a ``Raised`` (a worker thread has no Ctrl-C)."""
    return call_sync(Invoke(call_id, step_id, _resolve(shipped), arguments, attempt), time.perf_counter)


async def _call_on_worker_loop(
    shipped: Shipped, call_id: str, step_id: str, arguments: Mapping[str, Any], attempt: int
) -> Returned | Raised:
    """An async tool, on the worker's event loop; the worker's own cancellation passes through."""
    command = Invoke(call_id, step_id, _resolve(shipped), arguments, attempt)
    return await call_async(command, time.perf_counter, "asyncio", (asyncio.CancelledError,))


# ---- the client side ------------------------------------------------------------------------------------


class _Hosted:
    """A coroutine run on the client's loop for a caller in another thread.

    ``outcome`` gets the result or the exception itself, a cancellation included (``run_coroutine_threadsafe``
    would only mark its future cancelled, losing the partial result the ``CancelledError`` carries).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, Any]) -> None:
        self.outcome: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._loop = loop
        self._task: asyncio.Task[Any] | None = None
        self._cancelled = False
        loop.call_soon_threadsafe(self._start, coroutine)

    def _start(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self._task = self._loop.create_task(coroutine)
        self._task.add_done_callback(self._finished)
        if self._cancelled:
            self._task.cancel()

    def _finished(self, task: asyncio.Task[Any]) -> None:
        try:
            self.outcome.set_result(task.result())
        except BaseException as exc:  # handed to the caller's thread
            self.outcome.set_exception(exc)

    def cancel(self) -> None:
        """Cancel the task on the client's loop (thread-safe)."""
        self._loop.call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()


class _DaskCall:
    """One call on the cluster, and its cancel handle: stops waiting for it and cancels its task there."""

    __slots__ = ("backend", "command", "future", "shipped", "submitted", "waiting")

    def __init__(self, backend: _DaskBackend, command: Invoke, shipped: Shipped, submitted: float) -> None:
        self.backend = backend
        self.command = command
        self.shipped = shipped
        self.submitted = submitted
        self.future: Future[Any] | None = None  # None until the batch it belongs to is sent
        self.waiting: asyncio.Task[None] | None = None

    def key(self) -> str:
        return f"{self.command.tool.name}-{uuid.uuid4().hex}"

    def cancel(self) -> bool:
        if self.waiting is not None:
            self.waiting.cancel()
        if self.future is not None:
            self.backend.cancel_on_cluster(self.future)
        return True


class _DaskBackend(AsyncioBackend):
    """The asyncio backend (timers, completion queue, task group) with invokes sent to the cluster.

    The invokes of one kernel batch are sent together, one ``client.map`` per kind of tool (sync, async),
    when the driver loop next waits: the scheduler takes one graph update for a fan-out of a thousand calls
    instead of a thousand (per call, that is most of the cost of sending it).
    """

    def __init__(self, client: Client, shipped: Mapping[int, tuple[Tool, Shipped]]) -> None:
        super().__init__(inline_sync_tools=False, max_workers=1)
        self._client = client
        self._shipped = shipped
        self._outbox: list[_DaskCall] = []
        self._cancelling: set[asyncio.Task[Any]] = set()

    def start_invoke(self, command: Invoke) -> None:
        tool = command.tool
        entry = self._shipped.get(id(tool))
        call = _DaskCall(self, command, entry[1] if entry is not None and entry[0] is tool else tool, self._clock())
        self.track(command.call_id, call)
        self._outbox.append(call)

    async def wait(self) -> list[Completion]:
        if self._outbox:
            self._send()
        return await super().wait()

    def _send(self) -> None:
        """Send every call started since the last wait (and not cancelled since), one map per function."""
        calls = [call for call in self._outbox if self.is_live(call.command.call_id)]
        self._outbox = []
        for run, group in ((_call_on_worker, False), (_call_on_worker_loop, True)):
            batch = [call for call in calls if call.command.tool.is_async is group]
            if not batch:
                continue
            try:
                futures = self._submit(run, batch)
            except Exception:  # some arguments cannot be serialized: send one by one to fail only those
                futures = []
                for call in batch:
                    try:
                        futures += self._submit(run, [call])
                    except Exception as exc:
                        self._cannot_send(call, exc)
                batch = [call for call in batch if self.is_live(call.command.call_id)]
            assert self._group is not None
            for call, future in zip(batch, futures, strict=True):
                call.future = future
                call.waiting = self._group.create_task(self._wait_for(call, future))

    def _submit(self, run: Callable[..., Any], batch: list[_DaskCall]) -> list[Future[Any]]:
        commands = [call.command for call in batch]
        futures: list[Future[Any]] = self._client.map(
            run,
            [call.shipped for call in batch],
            [c.call_id for c in commands],
            [c.step_id for c in commands],
            [c.arguments for c in commands],
            [c.attempt for c in commands],
            key=[call.key() for call in batch],
            pure=False,
        )
        return futures

    def _cannot_send(self, call: _DaskCall, exc: Exception) -> None:
        """The call's arguments cannot be serialized: it fails with a driver error, the run goes on."""
        command = call.command
        message = f"cannot send the call to the Dask cluster: {_describe(exc)}"
        error = ErrorInfo(ErrorKind.DRIVER, ErrorInfo.from_exception(exc).type, message, command.step_id)
        self.complete(Raised(command.call_id, error, call.submitted, self._clock()))

    async def _wait_for(self, call: _DaskCall, future: Future[Any]) -> None:
        command, submitted = call.command, call.submitted
        try:
            completion: Returned | Raised = await future
        except asyncio.CancelledError as exc:
            if not self.is_live(command.call_id):
                raise  # cancelled by the kernel or with the run: already answered
            completion = raised(command, exc, submitted, self._clock)  # the tool raised it, or the key was lost
        except Exception as exc:  # KilledWorker, a result that cannot be deserialized, a lost connection
            completion = raised(command, exc, submitted, self._clock)
        else:  # the driver's clock: when the result arrived, minus how long the tool took on its worker
            arrived = self._clock()
            took = completion.finished - completion.started
            completion = completion._replace(started=max(submitted, arrived - took), finished=arrived)
        self.complete(completion)

    def cancel_on_cluster(self, future: Future[Any]) -> None:
        """Cancel a call's task on the cluster (fire and forget: the kernel was answered already)."""
        cancelling = self._loop.create_task(self._client.cancel([future], reason="cancelled by flowkernel"))
        self._cancelling.add(cancelling)
        cancelling.add_done_callback(self._cancelling.discard)
