"""Reading a flow file into plain data, with the line and column of every value, and nothing else.

YAML goes through PyYAML's event parser and composer (libyaml's when installed) and never through a
constructor: no tag can build an object. Only the standard JSON-like tags are accepted (a mapping, a
sequence, strings, numbers, booleans, null); any other (``!!python/object/apply:os.system``, ``!!binary``,
``!!set``, a custom ``!tag``) is a problem at its position. Bounds keep a hostile file cheap: its size
is checked before it is read, nesting depth and the number of events before anything is composed, and
the values an alias expands to are counted as they are copied (a "billion laughs" stops at the limit).
JSON files must be JSON (checked by :mod:`json`), then read the same way for positions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FileProblem, FlowFileError

if TYPE_CHECKING:
    import yaml

__all__ = ("DEFAULT_LIMITS", "FILE_SUFFIXES", "Document", "Limits", "Position", "read_document")

FILE_SUFFIXES = (".yaml", ".yml", ".json")
"""The suffixes of flow files (what ``flowkernel run`` reads as a file, not as ``MODULE:FLOW``)."""

Position = tuple[int, int]
"""A line and a column, both counting from 1."""

_STANDARD = "tag:yaml.org,2002:"
_SCALARS = frozenset(f"{_STANDARD}{kind}" for kind in ("str", "int", "float", "bool", "null", "timestamp"))


@dataclass(frozen=True, slots=True)
class Limits:
    """How big a flow file may be: bytes on disk, values after expanding aliases, and nesting depth."""

    max_bytes: int = 1 << 20
    max_nodes: int = 100_000
    max_depth: int = 64


DEFAULT_LIMITS = Limits()
"""1 MiB, 100,000 values, 64 levels: far more than any flow a person writes."""


@dataclass(frozen=True, slots=True)
class Document:
    """A flow file's data (dicts, lists, str, int, float, bool, None) and each value's position, keyed by
    its path from the root (``("steps", 0, "tool")``)."""

    file: str
    data: Any
    positions: dict[tuple[str | int, ...], Position] = field(default_factory=dict)

    def position(self, path: tuple[str | int, ...]) -> Position:
        """The position of the value at ``path``, or of its nearest ancestor the file has (a missing
        field is reported where its mapping starts)."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return (1, 1)

    def problem(self, path: tuple[str | int, ...], message: str, location: str | None = None) -> FileProblem:
        """A problem at the value at ``path`` (``location``: how to name it, default the path itself)."""
        line, column = self.position(path)
        return FileProblem(location if location is not None else dotted(path), message, self.file, line, column)


def dotted(path: tuple[str | int, ...]) -> str:
    """``("steps", 0, "tool")`` as ``steps[0].tool``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def read_document(path: Path, limits: Limits = DEFAULT_LIMITS) -> Document:
    """The data in the flow file ``path``; :class:`FlowFileError` if it cannot be read within ``limits``."""
    file = str(path)
    if path.exists() and not path.is_file():  # a directory, a FIFO that would block, a device
        raise _error(file, "not a regular file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise _error(file, f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > limits.max_bytes:
        raise _error(file, f"the file is larger than {limits.max_bytes} bytes, the most a flow file may be")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(file, f"the file is not UTF-8 text (byte {exc.start})") from None
    if path.suffix.lower() != ".json":
        return Document(file, *_Reader(file, limits).read(text))
    data = _read_json(file, text)
    try:  # YAML reads JSON too, but for the positions only: it folds a raw NEL in a string to a space
        _, positions = _Reader(file, limits).read(text)
    except _NotYaml:  # JSON that YAML does not read (a surrogate pair escape, a C1 control): no positions
        _check_size(file, data, limits)
        return Document(file, data)
    return Document(file, data, positions)


def _error(file: str, message: str, line: int = 0, column: int = 0) -> FlowFileError:
    return FlowFileError(file, (FileProblem("", message, file, line, column),))


class _NotYaml(FlowFileError):
    """The text is not YAML (raised for JSON that PyYAML cannot read, which is then read without positions)."""


def _check_size(file: str, data: Any, limits: Limits) -> None:
    """The node and depth limits on data read without the YAML reader."""
    pending, count = [(data, 0)], 0
    while pending:
        value, depth = pending.pop()
        count += 1
        if count > limits.max_nodes or depth > limits.max_depth:
            raise _error(file, f"more than {limits.max_nodes} values, or nested deeper than {limits.max_depth} levels")
        if isinstance(value, dict | list):
            pending.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))


def _read_json(file: str, text: str) -> Any:
    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        raise _error(file, f"not valid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except (ValueError, RecursionError) as exc:
        message = "nested too deep" if isinstance(exc, RecursionError) else str(exc)
        raise _error(file, f"not valid JSON: {message}") from None


_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
"""Plain scalars such as ``1e-3`` and ``2.5E3``: floats in JSON and YAML 1.2, strings to PyYAML's YAML 1.1
resolver (which wants a dot and a signed exponent); a JSON flow file holds them."""


@cache
def _loader() -> Any:
    """PyYAML's safe loader (libyaml's when installed), reading exponent floats as JSON and YAML 1.2 do."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader: Any = type("FlowFileLoader", (base,), {"__doc__": _loader.__doc__})
    loader.add_implicit_resolver(f"{_STANDARD}float", _EXPONENT_FLOAT, list("-+0123456789"))
    return loader


class _Reader:
    """One file's walk: events checked against the limits, then the composed nodes turned into data."""

    def __init__(self, file: str, limits: Limits) -> None:
        import yaml

        self.yaml = yaml
        self.loader = _loader()
        self.file = file
        self.limits = limits
        self.nodes = 0
        self.positions: dict[tuple[str | int, ...], Position] = {}
        self.problems: list[FileProblem] = []
        self._done: dict[int, tuple[Any, int]] = {}  # a node an alias repeats: its data, and how many values
        from yaml.constructor import SafeConstructor

        self._constructor = SafeConstructor()

    def read(self, text: str) -> tuple[Any, dict[tuple[str | int, ...], Position]]:
        yaml = self.yaml
        try:
            self._check_events(yaml.parse(text, Loader=self.loader))
            node = yaml.compose(text, Loader=self.loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            message = " ".join(part for part in (exc.context, exc.problem) if part)
            line, column = _place(mark)
            raise _NotYaml(
                self.file, (FileProblem("", f"not valid YAML: {message}", self.file, line, column),)
            ) from None
        except yaml.YAMLError as exc:
            raise _NotYaml(self.file, (FileProblem("", f"not valid YAML: {exc}", self.file),)) from None
        if node is None:
            raise _error(self.file, "the file is empty; a flow file holds a mapping (name, steps, ...)")
        data = self._value(node, (), 0)
        if self.problems:
            raise FlowFileError(self.file, tuple(self.problems))
        return data, self.positions

    def _check_events(self, events: Iterator[yaml.Event]) -> None:
        """Depth and size bounds before anything is composed (the composer recurses, and aliases share)."""
        yaml = self.yaml
        depth = 0
        for count, event in enumerate(events, 1):
            if count > 2 * self.limits.max_nodes:
                raise _error(self.file, f"more than {self.limits.max_nodes} values", *_place(event.start_mark))
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > self.limits.max_depth:
                    raise _error(
                        self.file, f"nested deeper than {self.limits.max_depth} levels", *_place(event.start_mark)
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1

    def _value(self, node: yaml.Node, path: tuple[str | int, ...], depth: int) -> Any:
        """The data of ``node``; a node met again (through an alias) is counted again at its full size,
        but built once and shared, so an alias bomb costs the size of its file until it hits the limit."""
        done = self._done.get(id(node))
        if done is not None:
            self._count(node, done[1])
            self.positions.setdefault(path, _place(node.start_mark))
            return done[0]
        before = self.nodes
        value = self._build(node, path, depth)
        self._done[id(node)] = (value, self.nodes - before)
        return value

    def _count(self, node: yaml.Node, values: int) -> None:
        self.nodes += values
        if self.nodes > self.limits.max_nodes:
            raise _error(
                self.file,
                f"more than {self.limits.max_nodes} values once aliases are expanded (an alias bomb?)",
                *_place(node.start_mark),
            )

    def _build(self, node: yaml.Node, path: tuple[str | int, ...], depth: int) -> Any:
        yaml = self.yaml
        self._count(node, 1)
        if depth > self.limits.max_depth:  # only through aliases: the events were checked
            raise _error(self.file, f"nested deeper than {self.limits.max_depth} levels", *_place(node.start_mark))
        self.positions.setdefault(path, _place(node.start_mark))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth) if node.tag == f"{_STANDARD}map" else self._bad_tag(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != f"{_STANDARD}seq":
                return self._bad_tag(node, path)
            return [self._value(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if not isinstance(node, yaml.ScalarNode) or node.tag not in _SCALARS:
            return self._bad_tag(node, path)
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: tuple[str | int, ...], depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == f"{_STANDARD}merge":
                self._problem(path, "merge keys (<<) are not supported in flow files", key_node)
                continue
            if not isinstance(key_node, self.yaml.ScalarNode) or key_node.tag != f"{_STANDARD}str":
                self._problem(path, f"keys must be strings, not {key_node.tag.rpartition(':')[2]!r}", key_node)
                continue
            key = key_node.value
            if key in result:
                self._problem((*path, key), f"duplicate key {key!r}", key_node)
                continue
            result[key] = self._value(value_node, (*path, key), depth + 1)
        return result

    def _scalar(self, node: yaml.ScalarNode, path: tuple[str | int, ...]) -> Any:
        kind = node.tag.rpartition(":")[2]
        if kind in ("str", "timestamp"):  # a date stays the text it is written as
            return node.value
        try:
            value = getattr(self._constructor, f"construct_yaml_{kind}")(node)
        except ValueError as exc:  # an integer with too many digits
            self._problem(path, f"cannot read {kind} {node.value[:20]!r}: {exc}", node)
            return None
        if isinstance(value, float) and math.isnan(value):
            self._problem(path, "NaN is not a value a flow file may hold", node)
        return value

    def _bad_tag(self, node: yaml.Node, path: tuple[str | int, ...]) -> None:
        self._problem(
            path, f"tag {node.tag!r} is not allowed: flow files hold only mappings, lists, strings, numbers, "
            "booleans and null (nothing read from a file is constructed or run)", node,
        )  # fmt: skip
        return

    def _problem(self, path: tuple[str | int, ...], message: str, node: yaml.Node) -> None:
        line, column = _place(node.start_mark)
        self.problems.append(FileProblem(dotted(path), message, self.file, line, column))


def _place(mark: Any) -> Position:
    if mark is None:
        return (0, 0)
    return (mark.line + 1, mark.column + 1)
