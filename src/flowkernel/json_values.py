"""Any value a tool returns as strict JSON data, the same way every time: what ``canonical()`` and
``to_json()`` of a result are built with (bytes as base64, ``nan``/``inf`` as strings, sets sorted,
memory addresses out of reprs, cycles and deep nesting as placeholders)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import fields, is_dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

__all__ = ("MAX_JSON_DEPTH", "MAX_TEXT_CHARS", "cut_middle", "json_ready", "safe_repr")

MAX_TEXT_CHARS = 8_000
"""The longest ``repr`` (or message) kept whole: longer ones lose their middle."""


def cut_middle(text: str, limit: int) -> str:
    """``text``, or its start and end around a note saying how much was cut, in at most ``limit`` characters."""
    if len(text) <= limit:
        return text
    note = f"\n[... {len(text):,} characters, cut to {limit:,}: the middle is left out ...]\n"
    keep = max(limit - len(note), 0)
    head = keep // 2
    return text[:head] + note + text[len(text) - (keep - head) :]


def safe_repr(value: Any) -> str:
    """``repr(value)``, bounded; a placeholder naming the type when ``__repr__`` raises."""
    try:
        return cut_middle(repr(value), MAX_TEXT_CHARS)
    except Exception as failure:
        return f"<unrepresentable {type(value).__qualname__}: __repr__ raised {type(failure).__qualname__}>"


# ---- any value as strict JSON data ------------------------------------------------------------------

MAX_JSON_DEPTH = 100
"""How deep :func:`json_ready` follows nested containers; anything deeper becomes a placeholder string."""

_FLOAT_NAMES = {math.inf: "Infinity", -math.inf: "-Infinity"}
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_MAX_INT_BITS = 13_000
"""Beyond this, an int is written in hex (Python refuses to print ints of more than 4,300 digits)."""


def json_ready(value: Any) -> Any:
    """``value`` as strict JSON data (dicts with string keys, lists, strings, finite floats, ints, booleans,
    ``None``), the same for equal values, whatever they are; never raises.

    - ``float('nan')``, ``inf`` and ``-inf`` become the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
      and bytes their base64 (URL-safe alphabet, padded): what pydantic writes with
      ``ser_json_inf_nan="strings"`` and ``ser_json_bytes="base64"``, and reads back with the same settings.
    - tuples become lists; sets and frozensets lists sorted by their elements' JSON text (their iteration
      order varies from process to process); pydantic models, dataclasses, datetimes, decimals, UUIDs,
      enums, paths whatever pydantic makes of them (``to_jsonable_python``), then the same rules.
    - dict keys become strings: ``1`` is ``"1"``, ``None`` ``"null"``, others like values; two keys that
      become the same string (``1`` and ``"1"``) keep the value that sorts last, so the outcome does not
      depend on the dict's order.
    - strings keep every character but lone surrogates (``"\\udc80"``: not UTF-8), which become U+FFFD;
      ints too long to print in decimal are written in hex (``"0x..."``).
    - anything else (iterators included, which would be used up) becomes its ``repr`` without memory
      addresses (``<app.Client object>``), or a placeholder naming its type if the repr raises; a
      container inside itself ``"<recursive list>"``; nesting deeper than :data:`MAX_JSON_DEPTH`
      ``"<list nested too deep>"``.
    """
    t = type(value)
    if (t is str and value.isascii()) or value is None or t is bool:  # the commonest fields, at once
        return value
    return _plain(value, 0, set())


def _plain(value: Any, depth: int, open_ids: set[int]) -> Any:
    t = type(value)
    if t is str:
        return value if value.isascii() else _valid_text(value)
    if t is int:
        return value if value.bit_length() <= _MAX_INT_BITS else hex(value)
    if t is float:
        return value if math.isfinite(value) else _FLOAT_NAMES.get(value, "NaN")
    if value is None or t is bool:
        return value
    if t is dict:  # the common containers, without the ABC checks below
        return _container(value, depth, open_ids, True)
    if t is list or t is tuple:
        return _container(value, depth, open_ids, False)
    return _other(value, t, depth, open_ids)


def _other(value: Any, t: type, depth: int, open_ids: set[int]) -> Any:
    if isinstance(value, str):  # subclasses (StrEnum...): their plain value, whatever they override
        return _plain(str.__str__(value), depth, open_ids)
    if isinstance(value, int):
        return _plain(int.__int__(value), depth, open_ids)
    if isinstance(value, float):
        return _plain(float.__float__(value), depth, open_ids)
    if t is bytes:
        return to_jsonable_python(value, bytes_mode="base64")
    if isinstance(value, Mapping):
        return _container(value, depth, open_ids, True)
    if isinstance(value, list | tuple | set | frozenset):
        return _container(value, depth, open_ids, False)
    if isinstance(value, Iterator):  # pydantic would use it up
        return _repr_of(value)
    try:
        if isinstance(value, BaseModel):  # its fields as Python values, so the rules here apply to them
            converted = value.model_dump()
        elif is_dataclass(value) and not isinstance(value, type):
            converted = {f.name: getattr(value, f.name) for f in fields(value)}
        else:  # datetimes, decimals, UUIDs, enums, paths...: pydantic's JSON form
            converted = to_jsonable_python(value, bytes_mode="base64", fallback=_repr_of)
    except Exception:
        return _repr_of(value)
    return _plain(converted, depth, open_ids)


def _container(value: Any, depth: int, open_ids: set[int], mapping: bool) -> Any:
    if depth >= MAX_JSON_DEPTH:
        return f"<{type(value).__qualname__} nested too deep>"
    key = id(value)
    if key in open_ids:
        return f"<recursive {type(value).__qualname__}>"
    open_ids.add(key)
    depth += 1
    try:
        if not mapping:
            items = [_plain(item, depth, open_ids) for item in value]
            if isinstance(value, set | frozenset):  # their order varies from process to process
                items.sort(key=_text)
            return items
        plain = {
            k if type(k) is str and k.isascii() else _key(k, depth, open_ids): _plain(item, depth, open_ids)
            for k, item in value.items()
        }
        if len(plain) < len(value):  # keys that became the same string: an order that does not depend on the dict's
            pairs = [(_key(k, depth, open_ids), _plain(item, depth, open_ids)) for k, item in value.items()]
            plain = dict(sorted(pairs, key=lambda pair: (pair[0], _text(pair[1]))))
        return plain
    except Exception:  # a hostile mapping, a container changed while read
        return _repr_of(value)
    finally:
        open_ids.discard(key)


def _key(key: Any, depth: int, open_ids: set[int]) -> str:
    if isinstance(key, str):
        return _plain(key, depth, open_ids)  # type: ignore[no-any-return]
    plain = _plain(key, depth, open_ids)
    return plain if isinstance(plain, str) else _text(plain)


def _text(plain: Any) -> str:
    """JSON text of data :func:`_plain` made, keys sorted: a sort key for sets."""
    return json.dumps(plain, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _valid_text(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (a pair is joined into its character)
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _repr_of(value: Any) -> str:
    """``repr(value)`` without memory addresses (equal runs make equal objects at different addresses)."""
    return _valid_text(_ADDRESS.sub("", safe_repr(value)))
