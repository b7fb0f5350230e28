"""Tools: the callables a flow's steps invoke, with optional pydantic input and output models."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Generic, Literal, overload

from pydantic import BaseModel, ConfigDict, Field, model_validator
from typing_extensions import ParamSpec, TypeVar

from .cache import CachePolicy
from .checked import MAX_SECONDS, CheckedModel
from .resource import Resource
from .retry import RetryPolicy
from .signature import arguments_model, return_model

__all__ = ("IDEMPOTENCY_KEY", "AsyncBackend", "Tool", "tool")

IDEMPOTENCY_KEY = "idempotency_key"
"""A tool with a parameter of this name receives a key unique to its run and step, stable across
retries and resumes (see :func:`flowkernel.host.session.idempotency_key`)."""

AsyncBackend = Literal["any", "asyncio", "trio"]
"""Which event loop an async tool needs: ``any`` covers anyio-based and plain-``await`` tools."""

P = ParamSpec("P", default=...)
R = TypeVar("R", default=Any)


class Tool(CheckedModel, Generic[P, R]):
    """A named callable with optional input and output schemas; calling it calls the function.

    With an ``input_model`` the kernel validates a step's arguments before invoking and calls the tool
    with the validated fields as keyword arguments; with an ``output_model`` it validates what the tool
    returns. A violation fails that step with a typed error record; it never crashes the run.
    Without them, the function's annotations give them (see :mod:`flowkernel.model.signature`), unless
    ``validate_annotations`` is false. ``Tool[P, R]`` is typed by the function's signature: ``@tool``
    on ``def double(x: int) -> int`` gives a ``Tool[[int], int]``, and ``double(2)`` type-checks and
    calls the function (without validation: that happens in runs).
    ``retry``, ``timeout`` and ``cache`` are the tool's defaults; a step may override them. With a
    ``cache`` policy, a run given a step cache serves repeated calls from it (see :class:`CachePolicy`).
    ``idempotency_key`` is detected: true when the function takes a parameter of that name, which the
    driver then fills in (steps cannot).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")
    _kind = "tool"
    _name_field = "name"

    name: str = Field(min_length=1)
    fn: Callable[P, R]
    description: str = ""
    input_model: type[BaseModel] | None = None
    output_model: type[BaseModel] | None = None
    is_async: bool = False
    async_backend: AsyncBackend = "any"
    retry: RetryPolicy | None = None
    timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    cache: CachePolicy | None = None
    """Reuse results across runs that have a step cache (idempotent tools only)."""
    idempotency_key: bool = False
    validate_annotations: bool = True
    """Derive ``input_model``/``output_model`` (those not given) from the function's annotations."""
    resources: tuple[Resource[Any], ...] = ()
    """Resources the tool uses (an MCP tool: its server's session): a run that may call it opens them."""

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
            if data.get("validate_annotations", True) and callable(fn) and isinstance(data.get("name"), str):
                data = _with_annotation_models(data, fn)
        return data

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function itself (no validation, no run: a tool stays usable as the function)."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"


def _with_annotation_models(data: dict[str, Any], fn: Callable[..., Any]) -> dict[str, Any]:
    """``data`` with the input and output models the annotations give, where none was given."""
    name = data["name"]
    if data.get("input_model") is None:
        model = arguments_model(fn, name, IDEMPOTENCY_KEY)
        if model is not None:
            data = {**data, "input_model": model}
    if data.get("output_model") is None:
        model = return_model(fn, name)
        if model is not None:
            data = {**data, "output_model": model}
    return data


def _takes_idempotency_key(fn: Any) -> bool:
    try:
        parameter = inspect.signature(fn).parameters.get(IDEMPOTENCY_KEY)
    except (TypeError, ValueError):  # no introspectable signature
        return False
    return parameter is not None and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)


@overload
def tool(
    fn: Callable[P, R],
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    input_model: type[BaseModel] | None = None,
    output_model: type[BaseModel] | None = None,
    async_backend: AsyncBackend = "any",
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
    cache: CachePolicy | None = None,
    validate: bool = True,
) -> Tool[P, R]: ...
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
    cache: CachePolicy | None = None,
    validate: bool = True,
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...
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
    cache: CachePolicy | None = None,
    validate: bool = True,
) -> Tool[..., Any] | Callable[[Callable[..., Any]], Tool[..., Any]]:
    """Make a :class:`Tool` from a function; name and description default to its name and docstring.

    The function's annotated parameters and return are validated in runs (``validate=False`` turns
    that off for this tool); the tool is typed by the function's signature and calling it calls it."""

    def build(f: Callable[..., Any]) -> Tool[..., Any]:
        return Tool(
            name=name or getattr(f, "__name__", None) or type(f).__name__,
            fn=f,
            description=description if description is not None else inspect.getdoc(f) or "",
            input_model=input_model,
            output_model=output_model,
            async_backend=async_backend,
            retry=retry,
            timeout=timeout,
            cache=cache,
            validate_annotations=validate,
        )

    return build(fn) if fn is not None else build
