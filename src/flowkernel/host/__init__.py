"""Host helpers: the backend-neutral plumbing every driver shares (I/O allowed here, not in the kernel)."""

from .async_driver import AsyncDriver, AsyncWaiter
from .backend import NOT_CANCELLABLE, Backend, Cancellable
from .context import current_invoke
from .driver import Driver
from .invoke import Clock, Passthrough, call_async, call_sync, call_sync_in_thread, raised
from .loops import UnsupportedToolError, check_tools_fit
from .middleware import Middleware, mark_cached, through_chain
from .registry import ENTRY_POINT_GROUP, installed_drivers, load_driver, load_driver_class
from .session import KernelSession, idempotency_key, new_run_id, partial_result
from .settings import RunSettings
from .streams import EventIterator, EventStream
from .threads import DaemonThreadPool, ThreadCall
from .world import NO_WORLD, CallWorld, declared_resources, opened_resources, shared_resources

__all__ = (
    "NOT_CANCELLABLE",
    "NO_WORLD",
    "CallWorld",
    "Middleware",
    "declared_resources",
    "opened_resources",
    "shared_resources",
    "through_chain",
    "mark_cached",
    "ENTRY_POINT_GROUP",
    "AsyncDriver",
    "AsyncWaiter",
    "Backend",
    "Cancellable",
    "Clock",
    "DaemonThreadPool",
    "EventIterator",
    "EventStream",
    "Passthrough",
    "ThreadCall",
    "Driver",
    "KernelSession",
    "RunSettings",
    "idempotency_key",
    "call_async",
    "call_sync",
    "call_sync_in_thread",
    "installed_drivers",
    "load_driver",
    "load_driver_class",
    "new_run_id",
    "partial_result",
    "raised",
    "UnsupportedToolError",
    "check_tools_fit",
    "current_invoke",
)
