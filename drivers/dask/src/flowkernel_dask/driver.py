"""The Dask driver itself: one cluster and client per driver, on a loop of their own, reused across runs."""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Unpack

from distributed import Client, LocalCluster
from distributed.utils import LoopRunner

from flowkernel import ExecutionResult, Flow
from flowkernel.errors import AbandonedCallWarning, ResourceError
from flowkernel.host import KernelSession, RunSettings, check_tools_fit, partial_result
from flowkernel_asyncio import AsyncioDriver

from .backend import DaskBackend
from .hosting import Hosted
from .shipping import ToolShipper
from .worker import close_on_worker, open_on_worker

__all__ = ("CLOSE_TIMEOUT", "DEFAULT_THREADS", "DaskDriver")

CLOSE_TIMEOUT = 10.0
"""Seconds :meth:`DaskDriver.close` waits for the client and the embedded cluster to close; past that,
calls still running (tools that ignore cancellation) are abandoned with an ``AbandonedCallWarning``."""
DEFAULT_THREADS = 32
"""Worker threads of the embedded in-process cluster: sync tools that block (on I/O) each hold one."""


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
        close_timeout: float = CLOSE_TIMEOUT,
        **cluster_options: Any,
    ) -> None:
        super().__init__()
        self.close_timeout = close_timeout
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
        self._shipper = ToolShipper()

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
            closing = asyncio.run_coroutine_threadsafe(self._disconnect(), self._loop)
            try:
                closing.result(timeout=self.close_timeout)
            except TimeoutError:  # a task that ignores cancellation holds a worker: leave it behind
                closing.cancel()
                warnings.warn(
                    AbandonedCallWarning(
                        f"the Dask cluster did not close within {self.close_timeout:g} s: a call that ignores "
                        "cancellation still runs on a worker; it was abandoned and runs on in the background"
                    ),
                    stacklevel=2,
                )
            finally:
                self._runner.stop()
                self._runner = self._loop = self._loop_thread = None
                self._shipper.clear()

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
        hosted = Hosted(loop, self._run_here(flow, inputs, settings))
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
        await self._shipper.check(flow, self._client, same_process=self.scheduler is None and not self.processes)
        opened = await self.open_run(flow, inputs, settings)
        backend = DaskBackend(self._client, self._shipper)
        session = KernelSession(flow, opened.inputs, backend, recorder=opened.recorder, **opened.settings)
        try:
            async with self._resources_on_workers(session):
                return await self.drive(session, backend, asyncio.TaskGroup(), backend.attach)
        finally:
            backend.close()

    @asynccontextmanager
    async def _resources_on_workers(self, session: KernelSession) -> AsyncIterator[None]:
        """Open the run's resources on every worker for the run (tools find them there by run id); the
        session itself opens none here, on the client's side."""
        declared, session.resources = session.resources, ()
        if not declared:
            yield
            return
        assert self._client is not None
        run_id = session.options.run_id
        try:
            await self._client.run(open_on_worker, run_id, declared)
        except Exception as exc:
            await self._client.run(close_on_worker, run_id)
            raise ResourceError(f"the run's resources could not be opened on the Dask workers: {exc}") from exc
        try:
            yield
        finally:
            await asyncio.shield(self._client.run(close_on_worker, run_id))

    def start_loop(self, main: Callable[[], Awaitable[None]]) -> None:
        """Run ``main`` on the client's loop (not a new one: the client is bound to its loop) and wait.

        Ctrl-C while waiting cancels the run there and raises ``KeyboardInterrupt`` with the partial result.
        """
        loop = self._start()
        if threading.get_ident() == self._loop_thread:
            raise RuntimeError("run_blocking() cannot be called from the Dask client's own loop; await run()")

        async def run_main() -> None:
            await main()

        hosted = Hosted(loop, run_main())
        try:
            hosted.outcome.result()
        except KeyboardInterrupt as interrupt:
            hosted.cancel()
            stopped = hosted.outcome.exception()
            if stopped is not None:
                interrupt.partial_result = partial_result(stopped)  # type: ignore[attr-defined]
            raise
