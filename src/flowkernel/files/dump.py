"""Writing a flow back as a file: a flow whose tools have names a file can use (MCP tools, registered
tools, tools at module level) becomes YAML or JSON that loads to an equal flow.

Sub-flows are written into the file's ``flows`` section; MCP servers into ``servers``. What is code and
has no name (a tool made inside a function, a flow's ``input_model``, a context ``model``, a resource that
is not an MCP server) cannot be written: :class:`FlowDumpError` says which and where.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points
from typing import Any, Literal

from ..errors import FlowKernelError
from ..model.flow import Flow
from ..model.policies import Fallback
from ..model.step import Step
from ..model.tool import Tool
from .names import TOOL_GROUP
from .schema import FORMAT_VERSION
from .sources import UnwritableValue, write_value

__all__ = ("FlowDumpError", "dump_flow", "flow_data")


class FlowDumpError(FlowKernelError, ValueError):
    """A flow holds something a file cannot name or hold (a tool without a module-level name, a model)."""


def dump_flow(flow: Flow, format: Literal["yaml", "json"] = "yaml") -> str:
    """``flow`` as the text of a flow file (:func:`flowkernel.files.load_flow_file` reads it back)."""
    data = flow_data(flow)
    if format == "json":
        return json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    import yaml

    class Dumper(yaml.SafeDumper):
        """PyYAML's safe dumper, writing text with a line break YAML folds (NEL, U+2028, U+2029) double-quoted,
        where it is escaped: written raw, it would read back as a space or a newline."""

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = '"' if any(mark in value for mark in _FOLDED_BREAKS) else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    written: str = yaml.dump(data, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)
    return written


_FOLDED_BREAKS = ("\x85", "\u2028", "\u2029")


def flow_data(flow: Flow) -> dict[str, Any]:
    """``flow`` as the plain data of a flow file."""
    writer = _Writer()
    body = writer.body(flow, top=True)
    data: dict[str, Any] = {"flowkernel": FORMAT_VERSION, **body}
    if writer.servers:
        data["servers"] = writer.servers
    if writer.flows:
        data["flows"] = writer.flows
    return data


class _Writer:
    def __init__(self) -> None:
        self.servers: dict[str, dict[str, Any]] = {}
        self.flows: dict[str, dict[str, Any]] = {}
        self._flow_names: dict[int, str] = {}
        self._registered: dict[int, str] | None = None

    def body(self, flow: Flow, top: bool = False) -> dict[str, Any]:
        where = f"flow {flow.name!r}"
        if flow.input_model is not None:
            raise FlowDumpError(f"{where}: its input_model (a Python class) cannot be written to a file")
        data: dict[str, Any] = {"name": flow.name, "version": flow.version}
        if flow.description:
            data["description"] = flow.description
        if flow.context is not None:
            if flow.context.model is not None:
                raise FlowDumpError(f"{where}: its context model (a Python class) cannot be written to a file")
            data["context"] = {"collision": flow.context.collision}
        if flow.outputs is not None:
            data["outputs"] = {name: write_value(ref) for name, ref in flow.outputs.items()}
        for resource in flow.resources:
            self._server(resource, where) if _is_server(resource) else _no_resource(resource, where)
        data["steps"] = [self.step(step, f"{where} step {step.id!r}") for step in flow.steps]
        return data

    def step(self, step: Step, where: str) -> dict[str, Any]:
        data: dict[str, Any] = {"id": step.id}
        if step.tool is not None:
            data["tool"] = self.tool_name(step.tool, where)
        else:
            assert step.flow is not None
            data["flow"] = {"name": self.subflow(step.flow)}
        try:
            if step.arguments:
                data["arguments"] = {name: write_value(value) for name, value in step.arguments.items()}
            if step.map is not None:
                data["map"] = write_value(step.map)
            on_error = step.on_error
            if isinstance(on_error, Fallback):
                fallback = (
                    {"tool": self.tool_name(on_error.tool, where)}
                    if on_error.tool is not None
                    else {"value": write_value(on_error.value)}
                )
                data["on_error"] = {"fallback": fallback}
            elif on_error != "fail":
                data["on_error"] = on_error
        except UnwritableValue as exc:
            raise FlowDumpError(f"{where}: a file cannot hold {exc}") from None
        if step.max_concurrency is not None:
            data["max_concurrency"] = step.max_concurrency
        if step.after:
            data["after"] = list(step.after)
        mcp = step.tool is not None and _mcp_call(step.tool) is not None
        retry = step.retry_policy if mcp else step.retry  # an MCP tool's own settings are not in the file
        timeout = step.timeout_seconds if mcp else step.timeout
        cache = step.cache_policy if mcp else step.cache
        if retry is not None:
            data["retry"] = retry.model_dump(mode="json", exclude_defaults=True)
        if timeout is not None:
            data["timeout"] = timeout
        if cache is not None:
            data["cache"] = False if cache is False else cache.model_dump(mode="json", exclude_defaults=True)
        if step.when is not None:
            data["when"] = step.when
        if step.join != "all":
            data["join"] = step.join
        return data

    def subflow(self, flow: Flow) -> str:
        key = id(flow)
        if key not in self._flow_names:
            name = flow.name
            taken = set(self._flow_names.values())
            suffix = 2
            while name in taken:
                name, suffix = f"{flow.name}-{suffix}", suffix + 1
            self._flow_names[key] = name
            self.flows[name] = self.body(flow)
        return self._flow_names[key]

    def tool_name(self, tool: Tool[..., Any], where: str) -> str:
        call = _mcp_call(tool)
        if call is not None:
            self._server(call.server, where)
            return f"{call.server.name}.{call.tool}"
        registered = self._registered_names().get(id(tool))
        if registered is not None:
            return registered
        module = getattr(tool.fn, "__module__", None)
        loaded = sys.modules.get(module or "")
        if loaded is not None and module != "__main__":
            for attribute, value in vars(loaded).items():
                if value is tool:
                    return f"{module}:{attribute}"
        raise FlowDumpError(
            f"{where}: tool {tool.name!r} has no name a file can use: define it at module level (named "
            f"MODULE:ATTR), register it in the entry-point group {TOOL_GROUP}, or use an MCP server's tool"
        )

    def _registered_names(self) -> dict[int, str]:
        if self._registered is None:
            self._registered = {}
            for point in entry_points(group=TOOL_GROUP):
                try:
                    self._registered[id(point.load())] = point.name
                except Exception:  # a broken package: its tools are not this flow's
                    continue
        return self._registered

    def _server(self, server: Any, where: str) -> None:
        settings = {
            "command": server.command,
            "args": list(server.args) or None,
            "env": server.env,
            "cwd": server.cwd,
            "url": server.url,
            "headers": server.headers,
        }
        written = {key: value for key, value in settings.items() if value is not None}
        if self.servers.get(server.name, written) != written:
            raise FlowDumpError(f"{where}: two different MCP servers are named {server.name!r}")
        self.servers[server.name] = written


def _mcp_call(tool: Tool[..., Any]) -> Any:
    """The MCP call behind ``tool``, if it is an MCP server's tool (without importing the MCP code)."""
    client = sys.modules.get("flowkernel.mcp.client")
    if client is None or not isinstance(tool.fn, client.MCPToolCall):
        return None
    return tool.fn


def _is_server(resource: Any) -> bool:
    client = sys.modules.get("flowkernel.mcp.client")
    return client is not None and isinstance(resource, client.MCPServer)


def _no_resource(resource: Any, where: str) -> None:
    raise FlowDumpError(f"{where}: resource {resource.name!r} is Python code; only MCP servers can be written")
