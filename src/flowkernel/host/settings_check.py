"""Checking a run's settings (the keyword arguments of every driver's ``run``) before anything runs.

:func:`check_run_settings` refuses unknown names (with "did you mean"), values of the wrong type (no
coercion: ``'5'``, ``1.5``, ``True`` are not a concurrency limit; ``'yes'`` is not a bool), and values
out of range (a limit below 1, a deadline that is not a finite number of seconds in (0, 1e7]), all in
one :class:`~flowkernel.errors.RunOptionsError` listing each problem. :class:`KernelSession` calls it,
so every driver does; ``open_run`` does too, since drivers read the settings (and journal them) first.

Written by hand rather than as a pydantic ``TypeAdapter``: a run of one step costs tens of µs, and this
check must stay a small fraction of that (one dictionary walk, a type test per value).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import Problem, RunOptionsError
from ..model.checked import MAX_SECONDS
from ..model.resource import Resource
from .settings import RunSettings

__all__ = ("KNOWN_SETTINGS", "check_run_settings")

KNOWN_SETTINGS: tuple[str, ...] = tuple(RunSettings.__annotations__)
"""Every name a driver's ``run`` takes (``RunSettings``' keys)."""
_KNOWN = frozenset(KNOWN_SETTINGS)


def check_run_settings(settings: Mapping[str, Any], flow_name: str) -> None:
    """Raise :class:`RunOptionsError` listing every problem with ``settings``; return quietly if none."""
    problems: list[Problem] | None = None
    for name, value in settings.items():
        check = _CHECKS.get(name)
        if check is not None:
            found = check(value)
            if found is None:
                continue
            message = found
        elif name in _KNOWN:  # a setting added to RunSettings without a check here (a test catches it)
            continue
        else:
            message = _unknown(name)
        if problems is None:
            problems = []
        problems.append(Problem(name, message))
    if settings.get("resume") is True:  # cheap: absent in ordinary runs
        problems = problems or []
        if settings.get("journal") is None:
            problems.append(Problem("resume", "resume=True needs the journal to resume from: pass journal="))
        if not settings.get("run_id"):
            problems.append(Problem("resume", "resume=True needs the run_id of the run to resume"))
    if problems:
        raise RunOptionsError(flow_name, tuple(problems))


def _unknown(name: object) -> str:
    if not isinstance(name, str):
        return f"option names are strings, got {name!r}"
    close = difflib.get_close_matches(name, KNOWN_SETTINGS, n=1, cutoff=0.6)
    if close:
        return f"unknown option {name!r}; did you mean {close[0]!r}?"
    return f"unknown option {name!r} (the options are: {', '.join(KNOWN_SETTINGS)})"


def _got(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = "?"
    if len(text) > 60:
        text = text[:57] + "..."
    return f"got {text} ({type(value).__name__})"


def _run_id(value: Any) -> str | None:
    if value is None or (type(value) is str and value):
        return None
    return f"the run id must be a non-empty string or None, {_got(value)}"


def _limit(value: Any) -> str | None:
    if value is None or (type(value) is int and value >= 1):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:  # an int subclass (an IntEnum)
        return None
    return f"the concurrency limit must be a whole number of at least 1, or None for no limit, {_got(value)}"


def _deadline(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= MAX_SECONDS:
        return None  # nan fails the comparison, inf the bound
    return f"the deadline must be a number of seconds in (0, {MAX_SECONDS:g}], or None for none, {_got(value)}"


def _flag(value: Any) -> str | None:
    return None if value is True or value is False else f"must be True or False, {_got(value)}"


def _listener(value: Any) -> str | None:
    return None if value is None or callable(value) else f"must be a callable taking each event, or None, {_got(value)}"


def _middleware(value: Any) -> str | None:
    if not isinstance(value, list | tuple):
        return f"must be a list of middleware (generator functions of the call), {_got(value)}"
    for position, layer in enumerate(value):
        if not callable(layer):
            return f"[{position}] must be a middleware (a generator function of the call), {_got(layer)}"
    return None


def _resources(value: Any) -> str | None:
    if not isinstance(value, list | tuple):
        return f"must be a list of Resource declarations, {_got(value)}"
    for position, resource in enumerate(value):
        if not isinstance(resource, Resource):
            return f"[{position}] must be a Resource, {_got(resource)}"
    return None


def _cache(value: Any) -> str | None:
    if value is None:
        return None
    from .cache.store import StepCache  # here: sqlite3 is loaded only by runs that use a cache

    return None if isinstance(value, StepCache) else f"must be a StepCache (StepCache(path)), or None, {_got(value)}"


def _journal(value: Any) -> str | None:
    if value is None:
        return None
    from .journal.base import Journal  # here: the journal package imports the session, which imports this

    return None if isinstance(value, Journal) else f"must be a Journal (e.g. SqliteJournal), or None, {_got(value)}"


def _source(value: Any) -> str | None:
    return None if value is None or type(value) is str else f"must be a string (path.py:flow) or None, {_got(value)}"


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "run_id": _run_id,
    "max_concurrency": _limit,
    "deadline": _deadline,
    "fail_fast": _flag,
    "on_event": _listener,
    "middleware": _middleware,
    "cache": _cache,
    "resources": _resources,
    "journal": _journal,
    "resume": _flag,
    "allow_flow_change": _flag,
    "flow_source": _source,
}
