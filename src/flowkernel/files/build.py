"""Building a :class:`Flow` from a flow file, collecting every problem with its file, line and column.

The data is checked against the format (:mod:`flowkernel.files.schema`) first; then tools, servers,
resources and sub-flows are resolved and the flow is built, and its own validation problems (unknown
references, cycles, arguments that do not fit a tool) are mapped back to where they are in the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import DefinitionError, FileProblem, FlowFileError, FlowValidationError, Problem
from ..model.flow import Flow
from ..model.policies import ContextPolicy, ErrorPolicy, Fallback
from ..model.refs import MISSING, Input, Ref
from ..model.step import Step
from ..model.tool import Tool
from .names import NameError_, Names
from .schema import FlowBody, FlowFile, InputSource, OnErrorFallback, RefSource, StepSpec
from .source import DEFAULT_LIMITS, Document, Limits, dotted, read_document
from .sources import read_value

__all__ = ("FileLoader", "check_flow_file", "load_flow_file")

Path_ = tuple[str | int, ...]


def load_flow_file(path: str | Path, *, allow_modules: Iterable[str] = (), limits: Limits = DEFAULT_LIMITS) -> Flow:
    """The flow the file at ``path`` describes; :class:`FlowFileError` listing every problem otherwise.

    ``allow_modules``: the modules whose attributes the file may name as ``MODULE:ATTR`` (and packages,
    with everything inside them); nothing else is ever imported."""
    loader = FileLoader(allow_modules, limits)
    flow = loader.load(Path(path))
    if loader.problems or flow is None:
        raise FlowFileError(str(path), tuple(loader.sorted_problems()))
    return flow


def check_flow_file(
    path: str | Path, *, allow_modules: Iterable[str] = (), limits: Limits = DEFAULT_LIMITS
) -> list[FileProblem]:
    """Every problem of the flow file at ``path`` (empty when it loads)."""
    loader = FileLoader(allow_modules, limits)
    loader.load(Path(path))
    return loader.sorted_problems()


def _unresolved(**_: Any) -> None:
    raise RuntimeError("a placeholder for a tool that was not found; never run")


class FileLoader:
    """One load: the files read so far (a file included twice is read once), the chain of files being
    read (a file including itself, directly or not, is a cycle), and every problem found."""

    def __init__(self, allow_modules: Iterable[str], limits: Limits) -> None:
        self.allow_modules = tuple(allow_modules)
        self.limits = limits
        self.problems: list[FileProblem] = []
        self._loaded: dict[Path, Flow | None] = {}
        self._reading: list[Path] = []

    def sorted_problems(self) -> list[FileProblem]:
        """The problems by file (in the order first met), line and column."""
        files = list(dict.fromkeys(p.file for p in self.problems))
        return sorted(self.problems, key=lambda p: (files.index(p.file), p.line, p.column))

    def is_reading(self, path: Path) -> bool:
        """Whether ``path`` is being read (a file that includes it is part of a cycle, reported there)."""
        return path.resolve() in self._reading

    def load(self, path: Path, included_at: tuple[Document, Path_] | None = None) -> Flow | None:
        resolved = path.resolve()
        if resolved in self._reading:
            chain = " -> ".join(p.name for p in [*self._reading[self._reading.index(resolved) :], resolved])
            if included_at is not None:
                document, where = included_at
                self.problems.append(document.problem(where, f"sub-flow files include each other: {chain}"))
            return None
        if resolved in self._loaded:
            return self._loaded[resolved]
        self._reading.append(resolved)
        try:
            document = read_document(path, self.limits)
        except FlowFileError as exc:
            self.problems.extend(p for p in exc.problems if isinstance(p, FileProblem))
            flow = None
        else:
            flow = _FileBuilder(self, document, Names(self.allow_modules, resolved.parent)).build()
        finally:
            self._reading.pop()
        self._loaded[resolved] = flow
        return flow


class _FileBuilder:
    """One file's flow (and the flows in its ``flows`` section)."""

    def __init__(self, loader: FileLoader, document: Document, names: Names) -> None:
        self.loader = loader
        self.document = document
        self.names = names
        self.base = Path(document.file).resolve().parent
        self.servers: dict[str, Any] = {}
        self.local: Mapping[str, FlowBody] = {}
        self._local_built: dict[str, Flow | None] = {}
        self._local_building: list[str] = []
        self.broken = False

    def report(self, path: Path_, message: str, location: str | None = None) -> None:
        self.broken = True
        self.loader.problems.append(self.document.problem(path, message, location))

    def build(self) -> Flow | None:
        data = self.document.data
        if not isinstance(data, dict):
            self.report((), f"a flow file holds a mapping (name, steps, ...), not a {type(data).__name__}")
            return None
        try:
            spec = FlowFile.model_validate(data)
        except ValidationError as exc:
            self._schema_problems(exc, ())
            self._build_leniently(data)
            return None
        self.local = spec.flows
        self.servers = self._servers(spec)
        resources = []
        for i, name in enumerate(spec.resources):
            try:
                resources.append(self.names.resource(name))
            except NameError_ as exc:
                self.report(("resources", i), str(exc))
        return self._flow(spec, (), spec.name, resources)

    def _schema_problems(self, exc: ValidationError, prefix: Path_) -> None:
        """pydantic's errors at their place in the file, one problem per place (a union's alternatives
        joined with "or")."""
        found: dict[Path_, list[str]] = {}
        for error in exc.errors(include_url=False):
            path, rest = _data_path(self.document.data, (*prefix, *error["loc"]))
            inner = (error.get("ctx") or {}).get("error")
            if isinstance(inner, DefinitionError):  # a policy model of flowkernel's own, built from a mapping
                for problem in inner.problems:
                    at, _ = _data_path(self.document.data, (*path, *_location_path(problem.location)))
                    found.setdefault(at, []).append(problem.message)
                continue
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing" and rest:
                message = f"missing field {rest[0]!r}"
            elif error["type"] == "extra_forbidden":
                message = f"unknown field {path[-1]!r}"
            found.setdefault(path, [])
            if message not in found[path]:
                found[path].append(message)
        for path, messages in found.items():
            self.report(path, " or ".join(messages))

    def _build_leniently(self, data: dict[str, Any]) -> None:
        """Beside the format's problems, what the steps that fit it show (unknown tools, references,
        cycles), so one pass lists those too; a step that does not fit stands in by its id alone."""
        try:
            spec = FlowFile.model_validate({"name": "-", "steps": [], "servers": data.get("servers", {})})
            self.servers = self._servers(spec)
        except ValidationError:
            self.servers = {}
        raw_steps = data.get("steps")
        steps: list[Step] = []
        for i, raw in enumerate(raw_steps if isinstance(raw_steps, list) else []):
            step = self._lenient_step(raw, ("steps", i))
            if step is not None:
                steps.append(step)
        if steps:
            try:
                Flow(name=str(data.get("name") or "-"), steps=steps, context=_lenient_context(data))
            except (FlowValidationError, DefinitionError) as exc:
                self._model_problems(exc.problems, ())

    def _lenient_step(self, raw: Any, at: Path_) -> Step | None:
        """The step ``raw`` describes without its fields that do not fit the format (already reported)."""
        try:
            return self._step(StepSpec.model_validate(raw), at)
        except ValidationError as exc:
            if not isinstance(raw, dict):
                return None
            bad = {error["loc"][0] for error in exc.errors() if error["loc"]}
            trimmed = {key: value for key, value in raw.items() if key not in bad}
            if "id" in bad or not ({"tool", "flow"} & trimmed.keys()):
                return _stand_in(raw)
            try:
                return self._step(StepSpec.model_validate(trimmed), at)
            except ValidationError:
                return _stand_in(raw)

    def _servers(self, spec: FlowFile) -> dict[str, Any]:
        if not spec.servers:
            return {}
        from ..mcp.client import MCPServer

        servers: dict[str, Any] = {}
        for name, server in spec.servers.items():
            try:
                servers[name] = MCPServer(name, **server.model_dump(exclude_unset=True))
            except (ValueError, TypeError) as exc:
                self.report(("servers", name), str(exc))
        return servers

    def _tool(self, name: str, path: Path_) -> Tool[..., Any]:
        try:
            return self.names.tool(name, self.servers)
        except NameError_ as exc:
            self.report(path, str(exc))
            return Tool(name=name, fn=_unresolved, validate_annotations=False)

    def _flow(self, spec: FlowBody, at: Path_, name: str, resources: list[Any] | None = None) -> Flow | None:
        steps = [self._step(step, (*at, "steps", i)) for i, step in enumerate(spec.steps)]
        outputs = None if spec.outputs is None else {k: _ref(v) for k, v in spec.outputs.items()}
        built = [step for step in steps if step is not None]
        if len(built) != len(steps):
            return None
        try:
            flow = Flow(
                name=name,
                version=str(spec.version),
                description=spec.description,
                steps=built,
                outputs=outputs,
                context=None if spec.context is None else ContextPolicy(collision=spec.context.collision),
                resources=tuple(resources or ()),
            )
        except (FlowValidationError, DefinitionError) as exc:
            self._model_problems(exc.problems, at)
            return None
        return None if self.broken else flow

    def _model_problems(self, problems: Iterable[Problem], at: Path_) -> None:
        for problem in problems:
            path = (*at, *_location_path(problem.location))
            self.report(path, problem.message, dotted(path))

    def _step(self, spec: StepSpec, at: Path_) -> Step | None:
        tool = None if spec.tool is None else self._tool(spec.tool, (*at, "tool"))
        flow = None if spec.flow is None else self._subflow(spec, at)
        if spec.flow is not None and flow is None:
            return None  # its problems are reported; a stand-in would only add false ones
        arguments = {
            key: read_value(value, (*at, "arguments", key), self.report) for key, value in spec.arguments.items()
        }
        fields: dict[str, Any] = {
            "id": spec.id,
            "tool": tool,
            "flow": flow,
            "map": None if spec.map is None else _source(spec.map),
            "max_concurrency": spec.max_concurrency,
            "arguments": arguments,
            "after": tuple(spec.after),
            "retry": spec.retry,
            "timeout": spec.timeout,
            "cache": spec.cache,
            "on_error": self._on_error(spec.on_error, (*at, "on_error")),
            "when": spec.when,
            "join": spec.join,
        }
        try:
            return Step(**fields)
        except DefinitionError as exc:
            self._model_problems(exc.problems, at)
            return None

    def _on_error(self, spec: Any, at: Path_) -> ErrorPolicy:
        if not isinstance(spec, OnErrorFallback):
            return spec  # type: ignore[no-any-return]
        fallback = spec.fallback
        if fallback.tool is not None:
            if "value" in fallback.model_fields_set:
                self.report((*at, "fallback"), "a fallback is a value or a tool, not both")
            return Fallback(tool=self._tool(fallback.tool, (*at, "fallback", "tool")))
        return Fallback(value=read_value(fallback.value, (*at, "fallback", "value"), self.report))

    def _subflow(self, spec: StepSpec, at: Path_) -> Flow | None:
        sub = spec.flow
        assert sub is not None
        where = (*at, "flow")
        if (sub.file is None) == (sub.name is None):
            self.report(where, "a sub-flow is given by file or by name: exactly one of file and name")
            return None
        if sub.file is not None:
            flow = self.loader.load(self.base / sub.file, (self.document, (*where, "file")))
            if flow is None and not self.loader.is_reading(self.base / sub.file):
                self.report((*where, "file"), f"the sub-flow file {sub.file!r} does not load (see its problems)")
            return flow
        assert sub.name is not None
        if sub.name in self.local:
            return self._local_flow(sub.name, (*where, "name"))
        try:
            return self.names.flow(sub.name)
        except NameError_ as exc:
            local = f" (flows in this file: {', '.join(self.local)})" if self.local else ""
            self.report((*where, "name"), f"{exc}{local}")
            return None

    def _local_flow(self, name: str, at: Path_) -> Flow | None:
        if name in self._local_building:
            chain = " -> ".join([*self._local_building[self._local_building.index(name) :], name])
            self.report(at, f"flows run each other as sub-flows: {chain}")
            return None
        if name not in self._local_built:
            self._local_building.append(name)
            try:
                body = self.local[name]
                self._local_built[name] = self._flow(body, ("flows", name), body.name or name)
            finally:
                self._local_building.pop()
        return self._local_built[name]


def _stand_in(raw: Any) -> Step | None:
    """A step standing in for one that does not fit the format, so references to it are not reported."""
    step_id = raw.get("id") if isinstance(raw, dict) else None
    try:
        return Step(id=step_id, tool=Tool(name="-", fn=_unresolved, validate_annotations=False))
    except DefinitionError:
        return None


def _lenient_context(data: dict[str, Any]) -> ContextPolicy | None:
    return None if data.get("context") is None else ContextPolicy()


def _ref(spec: RefSource) -> Ref:
    return Ref(spec.ref, spec.path, default=spec.default if "default" in spec.model_fields_set else MISSING)


def _source(spec: RefSource | InputSource) -> Ref | Input:
    if isinstance(spec, RefSource):
        return _ref(spec)
    return Input(spec.input, spec.path, default=spec.default if "default" in spec.model_fields_set else MISSING)


def _data_path(data: Any, loc: Iterable[Any]) -> tuple[Path_, list[Any]]:
    """The longest prefix of pydantic's ``loc`` that is a path in ``data`` (a union's member names and a
    missing field are not), and what is left of it."""
    path: list[str | int] = []
    parts = list(loc)
    while parts:
        part = parts[0]
        if _holds(data, part):
            data = data[part]
        elif isinstance(data, dict | list) or not isinstance(part, str):
            break
        else:  # a union member's name (RefSource, literal['fail','continue']) below a scalar or so
            parts.pop(0)
            continue
        path.append(part)
        parts.pop(0)
    return tuple(path), [p for p in parts if isinstance(p, str) and not p[:1].isupper() and "[" not in p]


def _holds(data: Any, part: Any) -> bool:
    if isinstance(data, dict):
        return isinstance(part, str) and part in data
    return isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)


_LOCATION_PART = re.compile(r"\[(\d+)\]|\s*\([^)]*\)|\.?([^.\[\s(]+)")


def _location_path(location: str) -> Path_:
    """A model problem's location (``steps[2] (fetch).arguments.rows[1]``) as a path in the file's data."""
    path: list[str | int] = []
    for match in _LOCATION_PART.finditer(location):
        index, name = match.group(1), match.group(2)
        if index is not None:
            path.append(int(index))
        elif name is not None:
            path.append(name)
    return tuple(path)
