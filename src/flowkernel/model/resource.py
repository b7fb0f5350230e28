"""Resources: named clients a run's tools share (an HTTP client, a database pool, an MCP session).

A :class:`Resource` is a declaration: a name and a factory of a context manager (sync or async). It
connects to nothing; the driver opens it when a run starts (on its own loop or thread) and closes it
when the run ends, whatever the ending. A tool reaches the open value with :meth:`Resource.get`::

    http = Resource("http", lambda: httpx.AsyncClient())
    flow = Flow(name="f", steps=[...], resources=[http])

    @tool
    async def fetch(url: str) -> str:
        return (await http.get().get(url)).text
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..errors import Problem, ResourceError

if TYPE_CHECKING:
    from .flow import Flow

__all__ = ("Resource", "ResourceFactory", "open_resources")

T = TypeVar("T")

ResourceFactory = Callable[[], AbstractContextManager[T] | AbstractAsyncContextManager[T]]
"""Called once per run (per worker, on Dask); what its context manager enters to is the resource."""

open_resources: ContextVar[Mapping[str, Any] | None] = ContextVar("flowkernel_resources", default=None)
"""The open resources of the run whose tool is executing (set by the driver around every tool call)."""


class Resource(Generic[T]):
    """A named resource, opened per run; ``get()`` inside a tool gives its open value, typed."""

    __slots__ = ("factory", "name")

    def __init__(self, name: str, factory: ResourceFactory[T]) -> None:
        if not name or not isinstance(name, str):
            raise ValueError(f"a resource needs a non-empty name, got {name!r}")
        if not callable(factory):
            raise TypeError(f"resource {name!r}: the factory must be callable, got {type(factory).__name__}")
        self.name = name
        self.factory = factory

    def get(self) -> T:
        """The open value in the run whose tool calls this; :class:`ResourceError` outside one or if the
        run did not declare it."""
        try:
            return (open_resources.get() or {})[self.name]  # type: ignore[no-any-return]
        except KeyError:
            raise ResourceError(
                f"resource {self.name!r} is not open here: call get() inside a tool of a run that declares it "
                "(Flow(resources=[...]) or the run's resources= setting)"
            ) from None

    def opened(self, value: T) -> Resource[T]:
        """This resource, already open as ``value``: pass it in a run's ``resources=`` to share one
        client between runs (the run uses it and leaves closing it to you). It keeps this resource's
        :meth:`check`. An async client must belong to the loop the driver runs on (asyncio and trio
        drivers: the caller's own)."""
        shared = copy.copy(self)
        shared.factory = lambda: nullcontext(value)
        return shared

    def check(self, value: T, flow: Flow) -> Iterable[Problem]:
        """What is wrong with ``flow`` given this resource's open ``value``, checked when the run's
        resources open, before any call (an MCP server checks the steps that call its tools); every
        resource's problems are raised together in one :class:`~flowkernel.errors.ToolMismatchError`."""
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
