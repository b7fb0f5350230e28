"""Construction errors as flowkernel errors: every model of a flow reports all its problems at once.

A model built with bad values (``Step(id="bad id", retries=-1)``) raises one
:class:`~flowkernel.errors.DefinitionError` (a ``FlowKernelError`` and a ``ValueError``) listing every
problem pydantic found, each at its field, instead of pydantic's own ``ValidationError``; a flow's own
fields raise :class:`~flowkernel.errors.FlowValidationError` like its structural problems. The models stay
pydantic models; only how their errors reach the caller changes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import DefinitionError, FlowKernelError, FlowValidationError, Problem

__all__ = ("MAX_SECONDS", "WHOLE", "CheckedModel", "problems_of")

WHOLE = "(the whole)"
"""The location of a problem with the object as a whole (not one field)."""

MAX_SECONDS = 1e7
"""The longest timeout, deadline or retry delay accepted, in seconds (~115 days). Longer (or infinite)
durations overflow drivers' clocks and timer heaps; a run meant to wait for ever needs no timeout."""


class CheckedModel(BaseModel):
    """A pydantic model whose construction errors are a :class:`DefinitionError` listing every problem.

    Its validator is built on first use (``defer_build``), not at import: ``import flowkernel.model`` then
    builds none, and a run builds only the models it meets (a flow without retries never builds
    ``RetryPolicy``'s). Subclasses inherit the setting (pydantic merges ``model_config``).
    """

    model_config = ConfigDict(defer_build=True)

    _kind: ClassVar[str] = "model"
    """What the model is called in messages (``"step"``)."""
    _name_field: ClassVar[str | None] = None
    """The field that names the instance in messages (``"id"``), if any."""

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = problems_of(exc, type(self).model_fields)
            problems.extend(p for p in type(self)._raw_problems(data) if p not in problems)
            raise self._error(data, tuple(problems)) from None

    @classmethod
    def _raw_problems(cls, data: Mapping[str, Any]) -> Iterable[Problem]:
        """Problems the model's own validators would find, checked on the raw data, so they are listed
        even when a field error stops pydantic before those validators run."""
        return ()

    @classmethod
    def _error(cls, data: Mapping[str, Any], problems: tuple[Problem, ...]) -> FlowKernelError:
        name = data.get(cls._name_field) if cls._name_field is not None else None
        return DefinitionError(cls._kind, name if isinstance(name, str) else None, problems)


def problems_of(exc: ValidationError, fields: Mapping[str, Any] | None = None) -> list[Problem]:
    """pydantic's errors as problems: where (``retry.max_attempts``), what, and the value given."""
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or WHOLE
        kind = error["type"]
        message = error["msg"]
        inner = (error.get("ctx") or {}).get("error")
        if isinstance(inner, DefinitionError | FlowValidationError):  # a nested model, built from a dict
            problems.extend(
                Problem(location if p.location == WHOLE else f"{location}.{p.location}", p.message)
                for p in inner.problems
            )
            continue
        if kind == "value_error":  # our validators' messages, without pydantic's prefix
            message = message.removeprefix("Value error, ")
        elif kind == "extra_forbidden":
            name = str(error["loc"][-1]) if error["loc"] else ""
            close = difflib.get_close_matches(name, list(fields or ()), n=1) if len(error["loc"]) == 1 else []
            message = f"unknown field {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
        if kind not in ("missing", "extra_forbidden") and error["loc"]:
            message += f" (got {_short(error.get('input'))})"
        problems.append(Problem(location, message))
    return problems


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__: the type is enough
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."
