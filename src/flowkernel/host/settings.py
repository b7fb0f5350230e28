"""The keyword arguments every driver's ``run`` takes, passed on unchanged to :class:`KernelSession`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from ..events import Event
    from ..model.resource import Resource
    from .cache.store import StepCache
    from .journal.base import Journal
    from .middleware import Middleware

__all__ = ("RunSettings",)


class RunSettings(TypedDict, total=False):
    """The keyword arguments every driver's ``run`` takes (each driver passes them on unchanged)."""

    run_id: str | None
    """The run's id; a random one when absent. Results depend on it (jitter), so fix it to compare."""
    max_concurrency: int | None
    deadline: float | None
    fail_fast: bool
    on_event: Callable[[Event], object] | None
    """Called with every progress event, in the driver's own thread or loop; ends with ``RunFinished``."""
    middleware: Sequence[Middleware]
    """Wrappers around every tool call, outermost first (see :mod:`flowkernel.host.middleware`)."""
    cache: StepCache | None
    """Serve calls of tools and steps with a cache policy from this step cache, and store their results
    (innermost of the middleware: see :mod:`flowkernel.host.cache`)."""
    resources: Sequence[Resource[Any]]
    """Resources opened for this run, besides the flow's own (see :class:`~flowkernel.model.Resource`)."""
    journal: Journal | None
    """Record every completion here before the kernel consumes it, so the run can be resumed."""
    resume: bool
    """Resume run ``run_id`` from ``journal``: replay it, re-dispatch what was in flight, go on live."""
    allow_flow_change: bool
    """Resume even though the flow's structure changed since the run started (replay still checks)."""
    flow_source: str | None
    """Where the flow can be loaded from (``path.py:flow``), recorded so ``flowkernel resume`` finds it."""
