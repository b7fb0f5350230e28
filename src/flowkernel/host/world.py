"""A run's world: what every tool call gets from its run (open resources, the middleware chain), and
opening the run's resources for as long as it lasts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, NamedTuple

from ..errors import ResourceError, ToolMismatchError
from ..model.flow import Flow
from ..model.resource import Resource
from .middleware import Middleware
from .per_flow import per_flow

__all__ = ("NO_WORLD", "CallWorld", "declared_resources", "opened_resources", "shared_resources")


class CallWorld(NamedTuple):
    """What each tool call of a run sees: the run's open resources and its call middleware."""

    resources: Mapping[str, Any] = {}
    middleware: tuple[Middleware, ...] = ()


NO_WORLD = CallWorld()


def declared_resources(flow: Flow, extra: Iterable[Resource[Any]] = ()) -> tuple[Resource[Any], ...]:
    """The resources a run opens: the flow's, its sub-flows' and its tools' (one per name), then the
    run's own, which replace a declaration of the same name (a session the caller opened once and shares)."""
    declared = _declared_by_flow(flow)
    if not extra:
        return declared
    found = {resource.name: resource for resource in declared}
    for resource in extra:
        found[_checked(resource).name] = resource
    return tuple(found.values())


@per_flow
def _declared_by_flow(flow: Flow) -> tuple[Resource[Any], ...]:
    """The flow's, its sub-flows' and its tools' resources, one per name: a walk of the whole flow, done
    once per flow rather than on every run."""
    found: dict[str, Resource[Any]] = {}
    for resource in _flow_resources(flow):
        other = found.setdefault(_checked(resource).name, resource)
        if other is not resource and other.factory is not resource.factory:
            raise ResourceError(f"two different resources are named {resource.name!r}")
    return tuple(found.values())


def _checked(resource: Any) -> Resource[Any]:
    if not isinstance(resource, Resource):
        raise ResourceError(f"resources must be Resource declarations, got {type(resource).__name__}")
    return resource


def _flow_resources(flow: Flow) -> Iterable[Resource[Any]]:
    yield from flow.resources
    for step in flow.steps:
        if step.flow is not None:
            yield from _flow_resources(step.flow)
    for _, tool in flow.tools():
        yield from tool.resources


@asynccontextmanager
async def opened_resources(
    declared: Sequence[Resource[Any]], flow: Flow | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Open ``declared`` in order and close them in reverse order when the block ends, however it ends,
    each closing in full even when the block was cancelled (sync context managers too).

    They are held by one task of their own, inside a shielded scope entered *before* them: a cancellation
    of the caller cannot cut a resource's cleanup short, and a manager that holds a task group (an MCP
    client, anyio's streams) still exits in the scope it was entered in (a shield around the exits alone
    would break that nesting). With ``flow``, each open resource then checks it (:meth:`Resource.check`):
    every problem found is raised in one :class:`ToolMismatchError`, before the block runs."""
    import anyio  # here: importing flowkernel stays light for runs without resources

    release = anyio.Event()

    async def hold(*, task_status: anyio.abc.TaskStatus[dict[str, Any] | BaseException]) -> None:
        with anyio.CancelScope(shield=True):
            async with AsyncExitStack() as stack:
                try:
                    values = {resource.name: await _enter(stack, resource) for resource in declared}
                    if flow is not None:
                        problems = tuple(p for r in declared for p in r.check(values[r.name], flow))
                        if problems:
                            raise ToolMismatchError(flow.name, problems)
                except Exception as exc:  # handed to the caller as it is (not in a task group's group)
                    task_status.started(exc)
                    return  # closing the ones already open
                task_status.started(values)
                await release.wait()

    async with anyio.create_task_group() as holder:
        opened = await holder.start(hold)
        if not isinstance(opened, BaseException):
            try:
                yield opened
            finally:
                release.set()
    if isinstance(opened, BaseException):
        raise opened


async def _enter(stack: AsyncExitStack, resource: Resource[Any]) -> Any:
    """Open one resource onto ``stack``; :class:`ResourceError` naming it if it cannot be opened."""
    try:
        manager = resource.factory()
        if hasattr(manager, "__aenter__"):
            return await stack.enter_async_context(manager)  # type: ignore[arg-type]
        if hasattr(manager, "__enter__"):
            return stack.enter_context(manager)
        raise TypeError(f"its factory returned {type(manager).__name__}, not a context manager")
    except Exception as exc:
        raise ResourceError(f"resource {resource.name!r} could not be opened: {type(exc).__name__}: {exc}") from exc


@asynccontextmanager
async def shared_resources(resources: Sequence[Resource[Any]]) -> AsyncIterator[tuple[Resource[Any], ...]]:
    """Open ``resources`` once for many runs: the block gets them as opened resources (see
    :meth:`Resource.opened`) to pass in each run's ``resources=``; they close when the block ends."""
    async with opened_resources(resources) as values:
        yield tuple(resource.opened(values[resource.name]) for resource in resources)
