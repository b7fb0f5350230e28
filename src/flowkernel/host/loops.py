"""Which event loop an async tool needs, checked before a run and recognised when a call fails."""

from __future__ import annotations

from ..errors import FlowKernelError, Problem
from ..model.flow import Flow
from ..model.tool import Tool
from ..result import ErrorInfo, ErrorKind
from .per_flow import per_flow

__all__ = ("UnsupportedToolError", "check_tools_fit", "foreign_loop_error")

# What an async tool raises when it awaits something of another event loop than the one running it.
_FOREIGN_LOOP_MARKERS = {
    "trio": ("no running event loop", "no current event loop", "unrecognized yield message"),
    "asyncio": ("must be called from async context", "unknown async library", "Task got bad yield"),
}


class UnsupportedToolError(FlowKernelError):
    """A flow's tools need an event loop this driver does not run; ``problems`` names each tool."""

    def __init__(self, driver: str, problems: tuple[Problem, ...]) -> None:
        self.driver = driver
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"the {driver} driver cannot run these tools:\n{listed}")


def check_tools_fit(flow: Flow, loop: str) -> None:
    """Refuse, before the run starts, tools declared for an event loop other than ``loop``."""
    problems = tuple(
        Problem(
            where,
            f"tool {tool.name!r} needs {tool.async_backend}, not {loop}; "
            f"use the {tool.async_backend} driver, or write the tool with anyio",
        )
        for where, tool in _loop_bound_tools(flow)
        if tool.async_backend != loop
    )
    if problems:
        raise UnsupportedToolError(loop, problems)


@per_flow
def _loop_bound_tools(flow: Flow) -> tuple[tuple[str, Tool], ...]:
    """The flow's async tools declared for one event loop, with where they are (usually none): a walk
    of the whole flow, done once per flow rather than on every run."""
    return tuple((where, tool) for where, tool in flow.tools() if tool.is_async and tool.async_backend != "any")


def foreign_loop_error(exc: BaseException, loop: str, tool: str) -> ErrorInfo | None:
    """A ``driver`` error if ``exc`` says the tool needs another event loop than ``loop``."""
    if not isinstance(exc, RuntimeError | TypeError | AttributeError):  # what a foreign loop raises
        return None
    try:
        text = str(exc)[:2000]
    except Exception:  # a hostile __str__: not a message about event loops
        return None
    if not any(marker in text for marker in _FOREIGN_LOOP_MARKERS.get(loop, ())):
        return None
    other = "asyncio" if loop == "trio" else "trio"
    return ErrorInfo(
        ErrorKind.DRIVER,
        ErrorInfo.from_exception(exc).type,
        f"tool {tool!r} cannot run on {loop}; it seems to need {other} ({text}). "
        f"Use the {other} driver, declare async_backend={other!r}, or write the tool with anyio",
    )
