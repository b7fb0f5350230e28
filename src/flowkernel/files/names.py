"""Finding what a flow file names: tools and flows by registered name or ``MODULE:ATTR``, MCP tools as
``SERVER.TOOL`` of the file's servers.

A file never imports a module of its own choosing: ``MODULE:ATTR`` is imported only when MODULE (or a
package holding it) is on the allowlist the user gave (``--allow-module``, or ``allow-modules`` in the
project's configuration, see :mod:`flowkernel.files.config`). Registered names come from the entry-point
groups ``flowkernel.tools`` and ``flowkernel.flows`` of installed packages, which the user installed.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ..model.flow import Flow
from ..model.resource import Resource
from ..model.tool import Tool, tool

__all__ = ("FLOW_GROUP", "TOOL_GROUP", "NameError_", "Names", "module_allowed")

TOOL_GROUP = "flowkernel.tools"
"""The entry-point group of tool packages: ``name = "package.module:tool"``, named by ``name`` in files."""
FLOW_GROUP = "flowkernel.flows"
"""The entry-point group of flows that files may run as sub-flows by name."""


class NameError_(LookupError):  # not the builtin NameError
    """A name in a file that names nothing usable; the message says what to do."""


def module_allowed(module: str, allowed: Iterable[str]) -> bool:
    """Whether ``module`` is on the allowlist: listed itself, or inside a listed package."""
    return any(module == name or module.startswith(name + ".") for name in allowed)


class Names:
    """The resolver of one load: the allowlist, the file's MCP tools, and what was found, kept so a
    name used twice gives the same object (a flow's tools compare by identity)."""

    def __init__(self, allow_modules: Iterable[str], base: Path | None = None) -> None:
        self.allow_modules = tuple(allow_modules)
        self.base = base
        self._found: dict[tuple[str, str], Any] = {}
        self._registered: dict[str, dict[str, Any]] = {}

    def tool(self, name: str, servers: Mapping[str, Any]) -> Tool[..., Any]:
        """The tool ``name`` names: ``SERVER.TOOL`` of a declared server, a registered tool, or ``MODULE:ATTR``."""
        server, dot, remote = name.partition(".")
        if ":" not in name and dot and server in servers:
            key = ("mcp", f"{id(servers[server])}:{remote}")
            if key not in self._found:
                self._found[key] = servers[server].tool(remote)
            return self._found[key]  # type: ignore[no-any-return]
        found = self._lookup("tool", name, TOOL_GROUP)
        if isinstance(found, Tool):
            return found
        if callable(found) and not isinstance(found, type):
            key = ("wrapped", name)
            if key not in self._found:
                self._found[key] = tool(found)
            return self._found[key]  # type: ignore[no-any-return]
        raise NameError_(f"{name!r} is a {type(found).__name__}, not a tool or a function")

    def flow(self, name: str) -> Flow:
        """The flow ``name`` names: a registered flow, or ``MODULE:ATTR`` (a Flow or a function returning one)."""
        found = self._lookup("flow", name, FLOW_GROUP)
        if callable(found) and not isinstance(found, Flow | type):
            found = found()
        if not isinstance(found, Flow):
            raise NameError_(f"{name!r} is a {type(found).__name__}, not a Flow")
        return found

    def resource(self, name: str) -> Resource[Any]:
        """The resource ``MODULE:ATTR`` names."""
        if ":" not in name:
            raise NameError_(f"{name!r}: a resource is named MODULE:ATTR")
        found = self._import(name)
        if not isinstance(found, Resource):
            raise NameError_(f"{name!r} is a {type(found).__name__}, not a Resource")
        return found

    def _lookup(self, kind: str, name: str, group: str) -> Any:
        key = (group, name)
        if key in self._found:
            return self._found[key]
        if ":" in name:
            found = self._import(name)
        else:
            if group not in self._registered:
                self._registered[group] = {point.name: point for point in entry_points(group=group)}
            registered = self._registered[group]
            if name not in registered:
                raise NameError_(_unknown(kind, name, registered, group))
            try:
                found = registered[name].load()
            except Exception as exc:
                raise NameError_(f"loading the registered {kind} {name!r} raised {type(exc).__name__}: {exc}") from None
        self._found[key] = found
        return found

    def _import(self, reference: str) -> Any:
        module_name, _, attribute = reference.partition(":")
        if not module_name or not attribute or not all(p.isidentifier() for p in module_name.split(".")):
            raise NameError_(f"{reference!r} is not MODULE:ATTR")
        if not module_allowed(module_name, self.allow_modules):
            raise NameError_(
                f"module {module_name!r} is not allowed: a flow file imports only modules you allow "
                f"(--allow-module {module_name}, or allow-modules = [{module_name!r}] under [tool.flowkernel] "
                "in pyproject.toml or in flowkernel.toml)"
            )
        if self.base is not None and str(self.base) not in sys.path:
            sys.path.append(str(self.base))  # after everything installed: a neighbour never shadows one
        try:
            target: Any = importlib.import_module(module_name)
        except Exception as exc:
            raise NameError_(f"importing {module_name!r} raised {type(exc).__name__}: {exc}") from None
        for part in attribute.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                raise NameError_(f"module {module_name!r} has no attribute {attribute!r}") from None
        return target


def _unknown(kind: str, name: str, registered: Mapping[str, Any], group: str) -> str:
    close = difflib.get_close_matches(name, list(registered), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    server = "not SERVER.TOOL of a server the file declares, " if kind == "tool" else ""
    return (
        f"unknown {kind} {name!r}: {server}not registered "
        f"(entry points {group}: {', '.join(sorted(registered)) or 'none'}), and not MODULE:ATTR{hint}"
    )
