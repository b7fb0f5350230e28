"""Tools: the callables a flow's steps invoke, with optional pydantic input and output models."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .checked import MAX_SECONDS, CheckedModel
from .retry import RetryPolicy

__all__ = ("IDEMPOTENCY_KEY", "AsyncBackend", "Tool", "tool")

IDEMPOTENCY_KEY = "idempotency_key"
"""A tool with a parameter of this name receives a key unique to its run and step, stable across
retries and resumes (see :func:`flowkernel.host.session.idempotency_key`)."""

AsyncBackend = Literal["any", "asyncio", "trio"]
"""Which event loop an async tool needs: ``any`` covers anyio-based and plain-``await`` tools."""


class Tool(CheckedModel):
    """A named callable with optional input and output schemas.

    With an ``input_model`` the kernel validates a step's arguments before invoking and calls the tool
    with the validated fields as keyword arguments; with an ``output_model`` it validates what the tool
    returns. A violation fails that step with a typed error record; it never crashes the run.
    ``retry`` and ``timeout`` are the tool's defaults; a step may override them.
    ``idempotency_key`` is detected: true when the function takes a parameter of that name, which the
    driver then fills in (steps cannot).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")
    _kind = "tool"
    _name_field = "name"

    name: str = Field(min_length=1)
    fn: Callable[..., Any]
    description: str = ""
    input_model: type[BaseModel] | None = None
    output_model: type[BaseModel] | None = None
    is_async: bool = False
    async_backend: AsyncBackend = "any"
    retry: RetryPolicy | None = None
    timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    idempotency_key: bool = False

    @model_validator(mode="before")
    @classmethod
    def _detect_async(cls, data: Any) -> Any:
        if isinstance(data, dict) and "fn" in data:
            fn = data["fn"]
            if "is_async" not in data:
                call = fn if inspect.isroutine(fn) else getattr(fn, "__call__", None)  # noqa: B004
                data = {**data, "is_async": inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)}
            if "idempotency_key" not in data:
                data = {**data, "idempotency_key": _takes_idempotency_key(fn)}
        return data

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


def _takes_idempotency_key(fn: Any) -> bool:
    try:
        parameter = inspect.signature(fn).parameters.get(IDEMPOTENCY_KEY)
    except (TypeError, ValueError):  # no introspectable signature
        return False
    return parameter is not None and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    input_model: type[BaseModel] | None = None,
    output_model: type[BaseModel] | None = None,
    async_backend: AsyncBackend = "any",
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    input_model: type[BaseModel] | None = None,
    output_model: type[BaseModel] | None = None,
    async_backend: AsyncBackend = "any",
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a :class:`Tool` from a function; name and description default to its name and docstring."""

    def build(f: Callable[..., Any]) -> Tool:
        return Tool(
            name=name or getattr(f, "__name__", None) or type(f).__name__,
            fn=f,
            description=description if description is not None else inspect.getdoc(f) or "",
            input_model=input_model,
            output_model=output_model,
            async_backend=async_backend,
            retry=retry,
            timeout=timeout,
        )

    return build(fn) if fn is not None else build
