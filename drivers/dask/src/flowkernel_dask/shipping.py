"""Sending tools to Dask workers: by reference where pickle can, checked on every worker before a run.

A tool that cannot be pickled, or cannot be loaded where the workers run, is refused before anything
runs, with :class:`UnshippableToolError` naming the tool and where the flow uses it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

from distributed import Client
from distributed.protocol import pickle

from flowkernel import Flow
from flowkernel.errors import Problem
from flowkernel.host import UnsupportedToolError
from flowkernel.model.tool import Tool

__all__ = ("SHIPPED_CACHE", "Shipped", "ToolReference", "ToolShipper", "UnshippableToolError", "describe", "resolve")

SHIPPED_CACHE = 4096
"""Tools already checked, remembered per driver (a parity suite builds thousands of flows)."""


class UnshippableToolError(UnsupportedToolError):
    """Tools that cannot be sent to the Dask workers (not picklable, or not importable there).

    Raised before the run starts; ``problems`` names each tool and where the flow uses it.
    """

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        super().__init__("dask", problems)


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


def resolve(shipped: Shipped) -> Tool:
    return shipped.resolve() if isinstance(shipped, ToolReference) else shipped


class ToolShipper:
    """What to send for each tool, for tools that passed the check; one per driver (per cluster)."""

    def __init__(self) -> None:
        self._tools: dict[int, tuple[Tool, Shipped]] = {}  # id -> (the tool, held so its id stays unique; what to send)

    def shipped(self, tool: Tool) -> Shipped:
        """What to send for ``tool``: its checked form, or the tool itself."""
        entry = self._tools.get(id(tool))
        return entry[1] if entry is not None and entry[0] is tool else tool

    def clear(self) -> None:
        self._tools.clear()

    async def check(self, flow: Flow, client: Client, *, same_process: bool) -> None:
        """Refuse, before the run, tools the workers could not receive: every tool is pickled here and, on
        a cluster in other processes, unpickled on every worker. Tools that passed are remembered."""
        fresh: dict[int, tuple[str, Tool, int]] = {}  # id -> (first place, tool, further places)
        for where, tool in flow.tools():
            if id(tool) in self._tools:
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
                problems[key] = f"cannot be pickled to send it to a Dask worker: {describe(exc)}"
        if blobs:
            if same_process:
                failures = unpickle_failures(blobs)  # the workers share this process
            else:
                failures = await _unpickle_on_the_workers(client, blobs)
            problems.update({key: f"cannot be loaded on a Dask worker: {text}" for key, text in failures.items()})
        if problems:
            raise UnshippableToolError(
                tuple(
                    Problem(where, f"tool {tool.name!r} {problems[key]}{elsewhere(more)}")
                    for key, (where, tool, more) in fresh.items()
                    if key in problems
                )
            )
        if len(self._tools) + len(fresh) > SHIPPED_CACHE:
            self._tools.clear()
        self._tools.update({key: (tool, shipped[key]) for key, (_, tool, _) in fresh.items()})


async def _unpickle_on_the_workers(client: Client, blobs: dict[int, bytes]) -> dict[int, str]:
    """Load every pickled tool on every worker (out of band, all at once): workers may differ."""
    try:
        per_worker: dict[str, dict[int, str]] = await client.run(unpickle_failures, blobs)
    except Exception as exc:
        problem = Problem("driver", f"the Dask workers could not run flowkernel-dask's check: {describe(exc)}")
        raise UnshippableToolError((problem,)) from exc
    failures: dict[int, str] = {}
    for worker, failed in sorted(per_worker.items()):
        for key, text in failed.items():
            failures.setdefault(key, f"{text} (on {worker})")
    return failures


def unpickle_failures(blobs: Mapping[int, bytes]) -> dict[int, str]:
    """Which pickled tools do not load here (on a worker), and why."""
    failures: dict[int, str] = {}
    for key, blob in blobs.items():
        try:
            resolve(pickle.loads(blob))
        except Exception as exc:
            failures[key] = describe(exc)
    return failures


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def elsewhere(more: int) -> str:
    return f" (and {more} other place{'s' * (more != 1)} in the flow)" if more else ""
