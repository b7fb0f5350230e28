"""Argument values in files: literals, with the ``$`` source forms anywhere inside, both ways.

``{"$ref": STEP, "path": P, "default": D}`` is :class:`Ref`, ``{"$input": NAME, ...}`` :class:`Input`,
``{"$item": PATH}`` :class:`Item`, ``{"$context": PATH}`` :class:`Context`; ``{"$literal": VALUE}`` is
VALUE as it is (a mapping whose keys start with ``$`` is otherwise read as a source, so a typo such as
``$rf`` is an error, not a literal).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..model.refs import MISSING, Context, Input, Item, Ref

__all__ = ("SOURCE_KEYS", "read_value", "write_value")

SOURCE_KEYS = ("$ref", "$input", "$item", "$context", "$literal")
_EXTRA_KEYS = {
    "$ref": {"path", "default"},
    "$input": {"path", "default"},
    "$item": {"default"},
    "$context": {"default"},
}

Report = Callable[[tuple[str | int, ...], str], None]


def read_value(value: Any, path: tuple[str | int, ...], report: Report) -> Any:
    """``value`` with its source forms read (``report(path, message)`` for each malformed one)."""
    if isinstance(value, dict):
        dollar = [key for key in value if key.startswith("$")]
        if dollar:
            return _read_source(value, dollar, path, report)
        return {key: read_value(item, (*path, key), report) for key, item in value.items()}
    if isinstance(value, list):
        return [read_value(item, (*path, i), report) for i, item in enumerate(value)]
    return value


def _read_source(value: dict[str, Any], dollar: list[str], path: tuple[str | int, ...], report: Report) -> Any:
    kind = dollar[0]
    if len(dollar) != 1 or kind not in SOURCE_KEYS:
        report(
            path,
            f"a mapping with $ keys ({', '.join(dollar)}) is a source: exactly one of {', '.join(SOURCE_KEYS)}; "
            'to pass such a mapping as it is, write {"$literal": ...}',
        )
        return None
    head = value[kind]
    if kind == "$literal":
        if len(value) != 1:
            report(path, "$literal takes no other keys")
        return head
    unknown = sorted(set(value) - {kind} - _EXTRA_KEYS[kind])
    if unknown:
        report(path, f"{kind} takes {' and '.join(sorted(_EXTRA_KEYS[kind]))}, not {', '.join(unknown)}")
    selection = value.get("path", "")
    if not isinstance(head, str) or not isinstance(selection, str):
        report(path, f"{kind} and path are strings")
        return None
    default = value.get("default", MISSING)
    if kind == "$ref":
        return Ref(head, selection, default=default)
    if kind == "$input":
        return Input(head, selection, default=default)
    if kind == "$item":
        return Item(head, default=default)
    return Context(head, default=default)


class UnwritableValue(ValueError):
    """A literal a file cannot hold (a pydantic model, a set, bytes, NaN...)."""


def write_value(value: Any) -> Any:
    """``value`` as file data: sources in their ``$`` forms, tuples as lists, ``$`` mappings escaped."""
    if isinstance(value, Ref | Input):
        head = {"$ref": value.step} if isinstance(value, Ref) else {"$input": value.name}
        return {**head, **({"path": value.path} if value.path else {}), **_default(value.default)}
    if isinstance(value, Item | Context):
        key = "$item" if isinstance(value, Item) else "$context"
        return {key: value.path, **_default(value.default)}
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise UnwritableValue(f"a mapping with keys that are not strings: {value!r:.80}")
        written = {key: write_value(item) for key, item in value.items()}
        return {"$literal": _plain(value)} if any(key.startswith("$") for key in value) else written
    if isinstance(value, list | tuple):
        return [write_value(item) for item in value]
    return _plain(value)


def _default(default: Any) -> dict[str, Any]:
    return {} if default is MISSING else {"default": _plain(default)}


def _plain(value: Any) -> Any:
    """A literal checked to be plain data (no sources inside: they would not be read back)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value:
            raise UnwritableValue("NaN")
        return value
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    raise UnwritableValue(f"a {type(value).__name__} ({value!r:.60})")
