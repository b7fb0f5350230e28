"""Argument sources: references to flow inputs and to earlier steps' outputs.

A step's argument is a literal, a :class:`Ref` to another step's output, or an :class:`Input`; refs may
sit anywhere inside lists and dicts. ``path`` selects into the value with a JMESPath expression
(``"items[0].name"``, ``"rows[*].id"``), the same language everywhere data is selected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult
from jmespath.visitor import TreeInterpreter
from pydantic import BaseModel

__all__ = (
    "MISSING",
    "Context",
    "ElementInput",
    "Input",
    "Item",
    "PathError",
    "Ref",
    "compile_path",
    "condition_names",
    "is_truthy",
    "nothing_selected",
    "select",
)


class _Missing:
    """The type of :data:`MISSING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"  # one instance, also after pickling (Dask ships flows)


MISSING: Final = _Missing()
"""A source's ``default`` when it has none: a path that selects nothing (null) is then an error."""


# A path that selects nothing (JMESPath's null: a missing key, an index past the end, or a null value,
# which JMESPath cannot tell apart) is an argument error naming the source, unless the source gives a
# ``default`` to use instead (``default=None`` keeps the null). A source without a path is never checked.


@dataclass(frozen=True, slots=True)
class Ref:
    """The output of step ``step``, or the part of it that the JMESPath ``path`` selects; when the path
    selects nothing (null), ``default`` if given, else the step fails with an argument error."""

    step: str
    path: str = ""
    default: Any = field(default=MISSING, kw_only=True, hash=False)  # a default may be unhashable

    def __str__(self) -> str:
        return f"ref({self.step}{'.' + self.path if self.path else ''})"

    def __repr__(self) -> str:
        return f"Ref(step={self.step!r}, path={self.path!r}{_default_repr(self.default)})"


@dataclass(frozen=True, slots=True)
class Input:
    """The flow input ``name``, or the part of it that the JMESPath ``path`` selects (``default`` as for
    :class:`Ref`)."""

    name: str
    path: str = ""
    default: Any = field(default=MISSING, kw_only=True, hash=False)  # a default may be unhashable

    def __str__(self) -> str:
        return f"input({self.name}{'.' + self.path if self.path else ''})"

    def __repr__(self) -> str:
        return f"Input(name={self.name!r}, path={self.path!r}{_default_repr(self.default)})"


@dataclass(frozen=True, slots=True)
class Context:
    """The accumulated context: the outputs of the steps this one depends on (directly or not), merged
    in declaration order; the part ``path`` selects (``default`` as for :class:`Ref`). Only in flows
    with a ``context`` policy."""

    path: str = ""
    default: Any = field(default=MISSING, kw_only=True, hash=False)  # a default may be unhashable

    def __str__(self) -> str:
        return f"context({self.path})"

    def __repr__(self) -> str:
        return f"Context(path={self.path!r}{_default_repr(self.default)})"


@dataclass(frozen=True, slots=True)
class Item:
    """In a map step's arguments: the current element of the list it maps over (or the part ``path``
    selects; ``default`` as for :class:`Ref`)."""

    path: str = ""
    default: Any = field(default=MISSING, kw_only=True, hash=False)  # a default may be unhashable

    def __str__(self) -> str:
        return f"item({self.path})"

    def __repr__(self) -> str:
        return f"Item(path={self.path!r}{_default_repr(self.default)})"


@dataclass(frozen=True, slots=True, repr=False)
class ElementInput(Input):
    """An :class:`Item` as the step running one element of a map step reads it: the input holding that
    element. It reads like any ``Input``; only a path that selects nothing is reported as the user wrote
    it (in the element, ``Item(..., default=...)``), not as the map's own input (``item3``)."""

    def __repr__(self) -> str:
        return f"ElementInput(name={self.name!r}, path={self.path!r}{_default_repr(self.default)})"


def _default_repr(default: Any) -> str:
    """Nothing without a default, so reprs (and the flow fingerprints built from them) stay as they were."""
    return "" if default is MISSING else f", default={default!r}"


def nothing_selected(source: Ref | Input | Context | Item) -> str:
    """The message of the argument error when ``source``'s path selects nothing."""
    kind = type(source).__name__
    if isinstance(source, Ref):
        where = f"the output of step {source.step!r}"
    elif isinstance(source, ElementInput | Item):
        where, kind = "the element", "Item"
    elif isinstance(source, Input):
        where = f"flow input {source.name!r}"
    else:
        where = "the step's context"
    return (
        f"path {source.path!r} selects nothing (null) in {where}; give {kind}(..., default=...) the value to use then"
    )


class PathError(ValueError):
    """A JMESPath expression that does not parse, or fails when evaluated."""


def compile_path(path: str) -> ParsedResult | None:
    """Compile a JMESPath expression (``None`` for the empty path, which selects the whole value)."""
    if not path:
        return None
    return _compiled(path)


@lru_cache(maxsize=4096)
def _compiled(path: str) -> ParsedResult:
    """A flow's build compiles each path twice (checked, then planned) and a chain repeats one path in
    every step; a compiled expression is never changed, so one serves them all (errors are not kept)."""
    try:
        return jmespath.compile(path)
    except JMESPathError as exc:
        raise PathError(f"invalid path {path!r}: {_one_line(exc)}") from None


def select(expression: ParsedResult, value: Any) -> Any:
    """Evaluate a compiled path against a value; pydantic models, at any depth, are searched by field."""
    parsed = expression.parsed
    if parsed["type"] == "field":  # a plain name (``Ref("prev", "x")``): read it without the interpreter
        return _field(value, parsed["value"])
    try:
        return _INTERPRETER.visit(parsed, value)
    except JMESPathError as exc:
        raise PathError(f"path {expression.expression!r} failed: {_one_line(exc)}") from None


def _field(value: Any, name: str) -> Any:
    """Field ``name`` of ``value``, as JMESPath reads one: a model's field (or extra), else ``value.get``,
    else null."""
    if isinstance(value, BaseModel):
        if name in type(value).__pydantic_fields__:  # (``model_fields`` goes through a deprecation check)
            return getattr(value, name)
        return (value.__pydantic_extra__ or {}).get(name)
    try:
        return value.get(name)
    except AttributeError:
        return None


class _ModelAwareInterpreter(TreeInterpreter):  # type: ignore[misc]  # jmespath ships no types
    """JMESPath's interpreter, reading pydantic models' fields in place (no dump of the whole value)."""

    def visit_field(self, node: dict[str, Any], value: Any) -> Any:
        return _field(value, node["value"])


_INTERPRETER = _ModelAwareInterpreter()


def _one_line(exc: Exception) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def condition_names(expression: ParsedResult) -> tuple[dict[str, set[str]], list[str]]:
    """The ``steps.<id>`` and ``inputs.<name>`` a condition reads from the document, and what else it
    reads at the document's root (a typo such as ``flag`` for ``inputs.flag``, or ``keys(steps)``, which
    hides which steps it depends on). Fields read inside projections and filters are not at the root."""
    found: dict[str, set[str]] = {"steps": set(), "inputs": set()}
    stray: list[str] = []

    def visit(node: Any, at_root: bool) -> None:
        if not isinstance(node, dict):
            return
        kind, children = node.get("type"), node.get("children", [])
        if kind == "field":
            if at_root:
                stray.append(f"{node['value']} (read whole)" if node["value"] in found else str(node["value"]))
            return
        if kind in ("subexpression", "index_expression") and children:
            head, rest = children[0], children[1:]
            named = head.get("type") == "field" and head.get("value") in found and at_root
            if named and kind == "subexpression" and rest[0].get("type") == "field":
                found[head["value"]].add(rest[0]["value"])
            else:
                visit(head, at_root)
            for child in rest:
                visit(child, False)
            return
        if kind in ("projection", "filter_projection", "value_projection", "flatten", "pipe") and children:
            visit(children[0], at_root)
            for child in children[1:]:
                visit(child, False)
            return
        for child in children:
            visit(child, at_root and kind != "expref")

    visit(expression.parsed, True)
    return found, stray


def is_truthy(value: Any) -> bool:
    """JMESPath truth: false, null, and empty strings, lists and objects are false; 0 is true."""
    return not (value is None or value is False or value == "" or value == [] or value == {})
