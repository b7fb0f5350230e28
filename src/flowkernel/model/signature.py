"""A tool's annotations as the models the kernel validates with (its ``input_model`` and ``output_model``).

``def double(x: int) -> int`` becomes a tool whose arguments are validated like a pydantic model's
(``"ab"`` for ``x`` fails the step with an input-validation error; ``"2"`` becomes ``2``, pydantic's lax
mode) and whose return value is checked against ``int`` (an output-validation error, retried like any
invalid output). Nothing new in the kernel: the derived models go through the ``input_model`` and
``output_model`` machinery that explicit models use, so the oracle, fallbacks and the journal see the
same thing. A function with no annotations (or only ``Any``) gets no model: its steps stay on the
kernel's fast path.

What is not checked: parameters that are unannotated or ``Any``; annotations that cannot be resolved
where the function is defined (a class local to an enclosing function, under ``from __future__ import
annotations``) or that pydantic cannot build a validator for; positional-only parameters and
``*args`` (tools are called with keywords); the ``idempotency_key`` parameter (the driver fills it in).
"""

from __future__ import annotations

import inspect
import typing
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model

__all__ = ("DERIVED_MODULE", "ReturnValue", "SignatureArguments", "arguments_model", "return_model")

DERIVED_MODULE = __name__
"""The ``__module__`` of every derived model, whatever the function's: the journal's flow fingerprint
names models by module and name, and a flow module is ``__main__`` in one process and ``flows`` in the
next (the models are made here, not importable from anywhere, and pickled by value when shipped)."""


class SignatureArguments(BaseModel):
    """Base of the input models derived from a function's parameters (the flow's build-time checks
    still read the function's signature for names; this model adds the types)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", protected_namespaces=())


class _OpenSignatureArguments(SignatureArguments):
    """For a function that also takes ``**kwargs``: names beyond its parameters pass through unchecked."""

    model_config = ConfigDict(extra="allow")


class ReturnValue(BaseModel):
    """Base of the output models derived from a return annotation that is not a model (``-> int``,
    ``-> list[Row]``): ``model_validate`` checks the value against the annotation and gives back the
    value itself (coerced as pydantic's lax mode does), not a model instance. Never instantiated."""

    annotation: ClassVar[Any] = Any
    adapter: ClassVar[TypeAdapter[Any]]

    @classmethod
    def model_validate(  # gives the validated value, not an instance
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        extra: Any = None,
        from_attributes: bool | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Any:
        return cls.adapter.validate_python(obj, strict=strict, from_attributes=from_attributes, context=context)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The function's annotations, resolved; those that cannot be resolved are left out (not checked)."""
    target = inspect.unwrap(fn)
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:  # a name that only exists where the function was defined: resolve one by one
        raw = getattr(target, "__annotations__", None) or {}
        namespace = getattr(target, "__globals__", {})
        hints: dict[str, Any] = {}
        for name, annotation in raw.items():
            try:
                hints[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation
            except Exception:
                continue
        return hints


def _checked(annotation: Any) -> bool:
    """Whether an annotation says anything worth validating: not ``Any``, pydantic can check it, and
    checking it does not replace the value with a lazy one (``Iterable[str]`` would be validated as a
    one-pass iterator wrapping the value: a tool iterating twice would see nothing the second time)."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return False
    try:
        adapter = TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # pydantic cannot validate this type: leave it unchecked
        return False
    return not _lazy(adapter.core_schema)


def _lazy(schema: Any) -> bool:
    if isinstance(schema, dict):
        return schema.get("type") == "generator" or any(_lazy(value) for value in schema.values())
    if isinstance(schema, list | tuple):
        return any(_lazy(value) for value in schema)
    return False


def arguments_model(fn: Callable[..., Any], name: str, driver_fills: str) -> type[BaseModel] | None:
    """The input model of a tool calling ``fn``: one field per keyword parameter, typed by its
    annotation (``Any`` where it has none), with its default; ``None`` if no parameter is annotated.
    ``driver_fills`` names the parameter the driver fills in (the idempotency key): not a field."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # no introspectable signature
        return None
    hints = _hints(fn)
    fields: dict[str, Any] = {}
    takes_any = False
    annotated = False
    for p in parameters:
        if p.kind is p.VAR_KEYWORD:
            takes_any = True
            continue
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.name == driver_fills:
            continue
        annotation = hints.get(p.name, Any)
        if _checked(annotation):
            annotated = True
        else:
            annotation = Any
        fields[p.name] = (annotation, ... if p.default is p.empty else p.default)
    if not annotated:
        return None
    base = _OpenSignatureArguments if takes_any else SignatureArguments
    with warnings.catch_warnings():  # a parameter named like a BaseModel method (json, schema) is fine:
        warnings.simplefilter("ignore")  # the kernel reads the validated values from the instance's __dict__
        try:
            model: type[BaseModel] = create_model(
                f"{name}_arguments", __base__=base, __module__=DERIVED_MODULE, **fields
            )
        except Exception:  # a name pydantic reserves (model_config): leave the parameters unchecked
            return None
    return model


def return_model(fn: Callable[..., Any], name: str) -> type[BaseModel] | None:
    """The output model of a tool calling ``fn``: its return annotation when that is a model, else a
    :class:`ReturnValue` checking the annotation; ``None`` without a (checkable) return annotation."""
    annotation = _hints(fn).get("return", Any)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if not _checked(annotation):
        return None
    adapter = TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
    namespace = {
        "annotation": annotation,
        "adapter": adapter,
        "model_validate": staticmethod(adapter.validate_python),  # the kernel's one call, without a hop
        "__module__": DERIVED_MODULE,
        "__qualname__": f"{name}_returns",
    }
    return type(f"{name}_returns", (ReturnValue,), namespace)
