"""Cache keys and cached values: canonical JSON, so a key is the same in every process and a stored
value is data that reading cannot turn into code."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from pydantic import BaseModel

from ...errors import CacheKeyError

__all__ = ("MAX_DEPTH", "CacheKey", "cache_key", "canonical_json", "json_value")

MAX_DEPTH = 200
"""The deepest nesting of arguments or values the cache takes (deeper values are not JSON data to it)."""


class CacheKey(NamedTuple):
    """What finds a cached result: the tool's name, the version its policy gives, the arguments as
    canonical JSON, and ``digest``, the SHA-256 of all three (the row's key in the file)."""

    tool: str
    version: str
    arguments: str
    digest: str


def cache_key(tool: str, version: str, arguments: Mapping[str, Any], *, where: str = "arguments") -> CacheKey:
    """The key of a call of ``tool`` (at policy ``version``) with ``arguments``.

    Arguments are JSON data: dicts with string keys, lists (and tuples, keyed as lists), strings, whole
    numbers, finite floats, booleans, ``None``, and pydantic models (keyed by their JSON dump).
    Anything else raises :class:`CacheKeyError` naming the argument and its type.
    """
    text = canonical_json({name: _keyable(value, f"{where}.{name}", 0) for name, value in arguments.items()})
    digest = hashlib.sha256(json.dumps([tool, version, text]).encode()).hexdigest()
    return CacheKey(tool, version, text, digest)


def canonical_json(value: Any) -> str:
    """``value`` (JSON data) as canonical JSON: sorted keys, no spaces, UTF-8 text, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _keyable(value: Any, where: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise CacheKeyError(f"{where} is nested deeper than {MAX_DEPTH} levels: it cannot key the step cache")
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        raise CacheKeyError(f"{where} is {value!r}, which JSON cannot hold: it cannot key the step cache")
    if kind is list or kind is tuple:
        return [_keyable(item, f"{where}[{k}]", depth + 1) for k, item in enumerate(value)]
    if kind is dict:
        for key in value:
            if type(key) is not str:
                raise CacheKeyError(f"{where} has a key that is not a string ({key!r}): it cannot key the step cache")
        return {key: _keyable(item, f"{where}.{key}", depth + 1) for key, item in value.items()}
    if isinstance(value, BaseModel):
        return _keyable(value.model_dump(mode="json"), where, depth + 1)
    raise CacheKeyError(
        f"{where} is a {kind.__qualname__}, not JSON data: it cannot key the step cache "
        "(give the tool JSON arguments, or the step cache=False)"
    )


def json_value(value: Any) -> str | None:
    """``value`` as JSON text if it is plain JSON data that reads back as an equal value of the same
    types (dicts with string keys, lists, strings, whole numbers, finite floats, booleans, ``None``);
    ``None`` for anything else (a tuple, a model, bytes), which the cache then does not store."""
    if not _plain(value, 0):
        return None
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)  # keys in their order


def _plain(value: Any, depth: int) -> bool:
    if depth > MAX_DEPTH:
        return False
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(_plain(item, depth + 1) for item in value)
    if kind is dict:
        return all(type(key) is str and _plain(item, depth + 1) for key, item in value.items())
    return False
