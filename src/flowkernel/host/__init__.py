"""Host helpers: the backend-neutral plumbing every driver shares (I/O allowed here, not in the kernel)."""

from .backend import Backend, Cancellable
from .context import current_invoke
from .driver import Driver
from .loops import UnsupportedToolError, check_tools_fit
from .invoke import Clock, call_async, call_sync
from .registry import ENTRY_POINT_GROUP, installed_drivers, load_driver, load_driver_class
from .session import KernelSession, new_run_id, partial_result

__all__ = (
    "ENTRY_POINT_GROUP",
    "Backend",
    "Cancellable",
    "Clock",
    "Driver",
    "KernelSession",
    "call_async",
    "call_sync",
    "installed_drivers",
    "load_driver",
    "load_driver_class",
    "new_run_id",
    "partial_result",
    "UnsupportedToolError",
    "check_tools_fit",
    "current_invoke",
)
