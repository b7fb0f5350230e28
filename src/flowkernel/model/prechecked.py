"""A step's fields checked without pydantic, for the values a flow's steps are nearly always built from.

``Step(...)`` is about a third of a flow's build, and nearly all of it is pydantic's validation of
values that need none: a step id, a :class:`~flowkernel.model.tool.Tool`, a dict of arguments, the
defaults. :func:`prechecked_step_fields` accepts exactly such values, each one checked as the field's
own validator would check it and given as that validator would give it (the arguments copied into a new
dict, ``after`` as a tuple, an ``int`` timeout as a ``float``); anything else (a wrong or unusual
value, a sub-flow, a map, a dict to be built into a model) answers ``None``, and the step goes through
pydantic, with its errors. ``tests/model/test_prechecked.py`` builds steps both ways and compares them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .cache import CachePolicy
from .checked import MAX_SECONDS
from .policies import Fallback
from .retry import RetryPolicy
from .tool import Tool

__all__ = ("STEP_DEFAULTS", "prechecked_step_fields", "valid_step_id")

STEP_DEFAULTS: dict[str, Any] = {
    "id": None,
    "tool": None,
    "flow": None,
    "map": None,
    "max_concurrency": None,
    "arguments": None,
    "after": (),
    "retry": None,
    "timeout": None,
    "on_error": "fail",
    "cache": None,
    "when": None,
    "join": "all",
}
"""Every field of a step, in declaration order (pydantic's ``__dict__`` order), with its default
(``arguments``: a new dict each time)."""

_FIELDS = len(STEP_DEFAULTS)


def valid_step_id(step_id: str) -> bool:
    """Whether ``step_id`` matches ``STEP_ID_PATTERN`` as pydantic matches it (whose ``$``, in Rust's
    regex, admits no trailing newline), asked with string methods, a third of a regex's time: ASCII,
    not starting with ``.`` or ``-``, an identifier once ``.`` and ``-`` read as ``_`` (an ASCII
    identifier is ``[A-Za-z_][A-Za-z0-9_]*``)."""
    return (
        step_id.isascii()
        and step_id[:1] not in (".", "-")
        and step_id.replace(".", "_").replace("-", "_").isidentifier()
    )


def prechecked_step_fields(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The step's ``__dict__`` for ``data`` (the keywords given to ``Step``), when every value is one
    of the common, valid kinds; else ``None`` (pydantic then validates, and reports what is wrong)."""
    fields = STEP_DEFAULTS.copy()
    fields.update(data)
    if len(fields) != _FIELDS:  # a name that is no field
        return None
    step_id = fields["id"]
    if type(step_id) is not str or not valid_step_id(step_id):
        return None
    if not isinstance(fields["tool"], Tool) or fields["flow"] is not None:
        return None
    if fields["map"] is not None or fields["max_concurrency"] is not None:
        return None
    arguments = fields["arguments"]
    if arguments is None:
        if "arguments" in data:
            return None
        fields["arguments"] = {}
    elif type(arguments) is dict:
        for name in arguments:
            if type(name) is not str:
                return None
        fields["arguments"] = arguments.copy()
    else:
        return None
    after = fields["after"]
    if after:
        if type(after) is not tuple and type(after) is not list:
            return None
        for dep in after:
            if type(dep) is not str:
                return None
        fields["after"] = tuple(after)
    elif type(after) is not tuple:
        if type(after) is not list:
            return None
        fields["after"] = ()
    retry = fields["retry"]
    if retry is not None and not isinstance(retry, RetryPolicy):
        return None
    timeout = fields["timeout"]
    if timeout is not None:
        if type(timeout) is not float and type(timeout) is not int:
            return None
        if not 0 < timeout <= MAX_SECONDS or not math.isfinite(timeout):
            return None
        fields["timeout"] = float(timeout)
    on_error = fields["on_error"]
    if type(on_error) is str:
        if on_error != "fail" and on_error != "continue":
            return None
    elif not isinstance(on_error, Fallback):
        return None
    cache = fields["cache"]
    if not (cache is None or cache is False or isinstance(cache, CachePolicy)):
        return None
    when = fields["when"]
    if when is not None and type(when) is not str:
        return None
    join = fields["join"]
    if type(join) is not str or (join != "all" and join != "any"):
        return None
    return fields
