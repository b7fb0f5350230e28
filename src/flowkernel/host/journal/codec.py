"""How a journal stores values: JSON with explicit tags, which cannot run code when read.

Plain JSON values (``None``, booleans, integers, finite floats, strings, lists, dicts with string keys)
are stored as they are. Every other type replay needs is a one-key object whose key starts with ``$``:

==============  ===============================================================
``$tuple``      a tuple, its items
``$set``        a set (``$frozenset`` a frozenset), its items
``$bytes``      bytes, base64
``$float``      ``"nan"``, ``"inf"`` or ``"-inf"``
``$dict``       a dict with keys that are not strings, or start with ``$``: its pairs
``$datetime``   ``$date``, ``$time``: ISO text; ``$timedelta``: days, seconds, microseconds
``$decimal``    a Decimal, as text; ``$uuid`` a UUID, as text
``$model``      a pydantic model: its class's import path, fields, fields set and extra fields
``$enum``       an enum member: its class's import path and value
``$returned``   ``$raised``, ``$timer``, ``$cancelled``: the completions; ``$error`` an ErrorInfo
                (a ``$returned`` served from a step cache has a fifth item, ``true``)
``$header``     a run's header
==============  ===============================================================

A model or enum class is never imported by the path in the file: the path is looked up in the codec's
**allowlist**, the classes the flow declares (tools' input and output models, the flow's input model,
their fields' models) and those given to the journal (``SqliteJournal(path, models=[...])``). A value
the codec has no tag for is refused when it is written, with :class:`UnstorableValueError` naming its
type and where it is, never written in a form that cannot be read back.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import json
import math
import threading
import types
import typing
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from ...errors import CorruptJournalError
from ...protocol import Cancelled, Raised, Returned, TimerFired
from ...result import ErrorInfo, ErrorKind
from .base import RunHeader
from .batch_text import returned_batch_text
from .declared import flow_classes
from .errors import UnstorableValueError

__all__ = ("JsonCodec", "Where", "describe", "flow_classes")

Where = str | tuple[Any, ...]
"""Where a value is, for the message that refuses it: text, or ``(parent, part, *args)``, the parent
place followed by ``part.format(*args)``. The text is only made for a refusal: formatting every place of
every value stored (a call id, a key's ``repr``) cost as much as encoding it."""
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
"""Made once: ``json.dumps`` with these options makes an encoder per call. It keeps no state between calls."""

_PLAIN = (str, int, bool, type(None))
_COMPLETIONS = (Returned, Raised, TimerFired, Cancelled)
_FLOAT_TAGS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class JsonCodec:
    """Encodes journal records as tagged JSON and decodes them back, constructing only known types."""

    def __init__(self, classes: Iterable[type] = ()) -> None:
        self._allowed: dict[str, type] = {}
        self._lock = threading.Lock()
        self.allow(classes)

    def allow(self, classes: Iterable[Any]) -> None:
        """Add pydantic model and enum classes (and their fields' models) to the allowlist."""
        found: dict[str, type] = {}
        for cls in classes:
            _collect(cls, found)
        with self._lock:
            self._allowed = {**self._allowed, **found}  # replaced whole: readers never see it half-built

    def allowed(self, cls: type) -> bool:
        return self._allowed.get(_path(cls)) is cls

    # ---- encoding -----------------------------------------------------------------------------

    def dumps(self, value: Any, where: Where) -> bytes:
        """``value`` as UTF-8 JSON; :class:`UnstorableValueError` (naming ``where``) if it cannot be stored."""
        text = returned_batch_text(value)  # the usual entry, written directly
        if text is None:
            text = _ENCODER.encode(self._encode(value, where))
        return text.encode()

    def _encode(self, value: Any, where: Where) -> Any:
        kind = type(value)
        if kind in _PLAIN:
            return value
        if kind is float:
            if math.isfinite(value):
                return value
            return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
        if kind is list:
            return [self._encode(item, (where, "[{}]", k)) for k, item in enumerate(value)]
        if kind is dict:
            if all(type(key) is str and not key.startswith("$") for key in value):
                return {key: self._encode(item, (where, "[{!r}]", key)) for key, item in value.items()}
            return {
                "$dict": [
                    [self._encode(key, (where, " (a key)")), self._encode(item, (where, "[{!r}]", key))]
                    for key, item in value.items()
                ]
            }
        if kind is Returned:
            call_id, output, started, finished, cached = value
            body = [call_id, self._encode(output, (where, ": the value {} returned", call_id)), started, finished]
            return {"$returned": [*body, True] if cached else body}  # journals from before the cache read alike
        if kind is Raised:
            call_id, error, started, finished = value
            return {
                "$raised": [call_id, self._encode(error, (where, ": the error {} raised", call_id)), started, finished]
            }
        if kind is TimerFired:
            return {"$timer": value.call_id}
        if kind is Cancelled:
            return {"$cancelled": value.call_id}
        if kind is tuple:  # an entry's completions name their calls, not their places
            items = [
                self._encode(v, where if type(v) in _COMPLETIONS else (where, "[{}]", k)) for k, v in enumerate(value)
            ]
            return {"$tuple": items}
        if kind is set or kind is frozenset:
            items = [self._encode(item, (where, " (an item)")) for item in value]
            return {"$set" if kind is set else "$frozenset": items}
        if kind is bytes:
            return {"$bytes": base64.b64encode(value).decode("ascii")}
        if kind is ErrorInfo:
            return {
                "$error": {
                    "kind": str(value.kind),
                    "type": value.type,
                    "message": value.message,
                    "step": value.step,
                    "traceback": value.traceback,
                    "details": self._encode(value.details, (where, ": error details")),
                }
            }
        if kind is RunHeader:
            return {
                "$header": {
                    "run_id": value.run_id,
                    "flow_name": value.flow_name,
                    "flow_version": value.flow_version,
                    "flow_hash": value.flow_hash,
                    "inputs": self._encode(dict(value.inputs), "the run's inputs"),
                    "max_concurrency": value.max_concurrency,
                    "deadline": self._encode(value.deadline, "the run's deadline"),
                    "fail_fast": value.fail_fast,
                    "flow_source": value.flow_source,
                }
            }
        if kind is dt.datetime:
            return {"$datetime": value.isoformat()}
        if kind is dt.date:
            return {"$date": value.isoformat()}
        if kind is dt.time:
            return {"$time": value.isoformat()}
        if kind is dt.timedelta:
            return {"$timedelta": [value.days, value.seconds, value.microseconds]}
        if kind is Decimal:
            return {"$decimal": str(value)}
        if kind is uuid.UUID:
            return {"$uuid": str(value)}
        if isinstance(value, BaseModel):
            return self._encode_model(value, where)
        if isinstance(value, enum.Enum) and self.allowed(kind):
            return {"$enum": [_path(kind), self._encode(value.value, where)]}
        raise UnstorableValueError(_unstorable(value, where, self._allowed))

    def _encode_model(self, value: BaseModel, where: Where) -> Any:
        cls = type(value)
        if not self.allowed(cls):
            raise UnstorableValueError(_unstorable(value, where, self._allowed))
        fields = {name: self._encode(item, (where, ".{}", name)) for name, item in value.__dict__.items()}
        extra = value.__pydantic_extra__
        return {
            "$model": [
                _path(cls),
                fields,
                sorted(value.__pydantic_fields_set__),
                None if extra is None else self._encode(dict(extra), (where, " (extra fields)")),
            ]
        }

    # ---- decoding -----------------------------------------------------------------------------

    def loads(self, blob: bytes, what: str) -> Any:
        """Decode ``blob``; :class:`CorruptJournalError` if it is not what this codec writes."""
        try:
            return json.loads(blob, object_hook=self._decode, parse_constant=_no_constant)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise CorruptJournalError(f"cannot read {what}: {message}") from None

    def _decode(self, obj: dict[str, Any]) -> Any:
        if len(obj) != 1:
            return obj
        ((tag, body),) = obj.items()
        if not tag.startswith("$"):
            return obj
        if tag == "$returned":
            call_id, value, started, finished, *cached = body
            if cached and (len(cached) != 1 or cached[0] is not True):
                raise ValueError("a $returned record with a fifth field that is not true")
            return Returned(_str(call_id), value, _number(started), _number(finished), bool(cached))
        if tag == "$raised":
            call_id, error, started, finished = body
            if type(error) is not ErrorInfo:
                raise ValueError("a $raised record without an error")
            return Raised(_str(call_id), error, _number(started), _number(finished))
        if tag == "$timer":
            return TimerFired(_str(body))
        if tag == "$cancelled":
            return Cancelled(_str(body))
        if tag == "$tuple":
            return tuple(_list(body))
        if tag == "$set":
            return set(_list(body))
        if tag == "$frozenset":
            return frozenset(_list(body))
        if tag == "$dict":
            return dict(_list(body))
        if tag == "$bytes":
            return base64.b64decode(_str(body), validate=True)
        if tag == "$float":
            return _FLOAT_TAGS[body]
        if tag == "$error":
            return ErrorInfo(
                ErrorKind(body["kind"]),
                _str(body["type"]),
                _str(body["message"]),
                _optional_str(body["step"]),
                _optional_str(body["traceback"]),
                body["details"],
            )
        if tag == "$header":
            return RunHeader(
                _str(body["run_id"]),
                _str(body["flow_name"]),
                _str(body["flow_version"]),
                _str(body["flow_hash"]),
                dict(body["inputs"]),
                body["max_concurrency"],
                body["deadline"],
                bool(body["fail_fast"]),
                _optional_str(body["flow_source"]),
            )
        if tag == "$datetime":
            return dt.datetime.fromisoformat(_str(body))
        if tag == "$date":
            return dt.date.fromisoformat(_str(body))
        if tag == "$time":
            return dt.time.fromisoformat(_str(body))
        if tag == "$timedelta":
            days, seconds, micro = body
            return dt.timedelta(days=days, seconds=seconds, microseconds=micro)
        if tag == "$decimal":
            return Decimal(_str(body))
        if tag == "$uuid":
            return uuid.UUID(_str(body))
        if tag == "$model":
            return self._decode_model(*body)
        if tag == "$enum":
            path, value = body
            cls = self._class(path)
            if not issubclass(cls, enum.Enum):
                raise ValueError(f"{path} is not an enum")
            return cls(value)
        raise ValueError(f"unknown tag {tag!r}")

    def _decode_model(self, path: str, fields: dict[str, Any], fields_set: list[str], extra: Any) -> BaseModel:
        cls = self._class(path)
        if not issubclass(cls, BaseModel):
            raise ValueError(f"{path} is not a pydantic model")
        # Not model_validate: the fields are the instance's own values, already of their types (nested
        # models decoded by their own tags); construct sets them as they were, without re-validating.
        model = cls.model_construct(_fields_set=set(fields_set), **fields)
        if extra is not None:
            object.__setattr__(model, "__pydantic_extra__", dict(extra))
        return model

    def _class(self, path: Any) -> type:
        cls = self._allowed.get(_str(path))
        if cls is None:
            raise ValueError(
                f"the class {path} is not in the journal's allowlist (the flow's models and the journal's"
                " models=[...]); it is never imported by the name in the file"
            )
        return cls


def _collect(cls: Any, found: dict[str, type]) -> None:
    """``cls`` and the model and enum classes its fields' annotations name, recursively."""
    if isinstance(cls, type) and issubclass(cls, BaseModel | enum.Enum):
        path = _path(cls)
        if found.get(path) is cls:
            return
        found[path] = cls
        if issubclass(cls, BaseModel):
            for field in cls.model_fields.values():
                _collect(field.annotation, found)
        return
    origin = typing.get_origin(cls)
    if origin is not None or isinstance(cls, types.UnionType):
        for arg in typing.get_args(cls):
            _collect(arg, found)


def describe(where: Where) -> str:
    """The text of a place: ``where`` itself, or its parent's text followed by its formatted part."""
    if isinstance(where, str):
        return where
    parent, part, *args = where
    return describe(parent) + str(part).format(*args)


def _unstorable(value: Any, at: Where, allowed: Mapping[str, type]) -> str:
    where = describe(at)
    kind = type(value)
    name = kind.__qualname__ if kind.__module__ == "builtins" else _path(kind).replace(":", ".")
    if isinstance(value, BaseModel | enum.Enum):
        return (
            f"cannot store {where}: {name} is not in the journal's allowlist of classes (the flow's declared"
            f" models and enums, and SqliteJournal(..., models=[...])): add it there"
        )
    return (
        f"cannot store {where}: the journal's codec has no tag for a {name} (it stores JSON values, tuples,"
        " sets, bytes, floats, dates and times, decimals, UUIDs, and pydantic models and enums it is told"
        " of); return one of those, or open the journal with trusted=True and codec='pickle'"
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"bare {name} (not written by this codec)")


def _str(value: Any) -> str:
    if type(value) is not str:
        raise ValueError(f"expected text, found {type(value).__name__}")
    return value


def _optional_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _number(value: Any) -> float:
    if type(value) not in (int, float):
        raise ValueError(f"expected a number, found {type(value).__name__}")
    return value  # type: ignore[no-any-return]


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise ValueError(f"expected a list, found {type(value).__name__}")
    return value
