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

from .driver import DEFAULT_THREADS, DaskDriver
from .shipping import Shipped, ToolReference, UnshippableToolError

__all__ = ("DEFAULT_THREADS", "DaskDriver", "Shipped", "ToolReference", "UnshippableToolError")

__version__ = "0.2.0"
"""The distribution's version (the single source: hatch reads it when building)."""
