"""Tools described by JSON Schemas: arguments and results checked against a schema, not Python types.

An MCP server, an OpenAPI operation or a flow file describes its tools with JSON Schemas. :func:`schema_tool`
makes a :class:`Tool` of a function and such schemas; the kernel validates each call's arguments (and
the result) through the same ``input_model``/``output_model`` machinery as annotated tools, so a bad
argument is an input-validation error on the step, a bad result an output-validation error (retried
like any invalid output), and a flow's literal arguments are checked when it is built (unknown and
missing names, wrong types: every problem at once). Validation is the ``jsonschema`` library's
(the ``schema`` extra), by the schema's own ``$schema`` dialect, Draft 2020-12 when it names none.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from .signature import DERIVED_MODULE
from .tool import Tool

__all__ = (
    "SchemaArguments",
    "SchemaResult",
    "ValidatedArguments",
    "schema_arguments_model",
    "schema_result_model",
    "schema_tool",
)

_NOT_IDENTIFIER = re.compile(r"\W")


class ValidatedArguments:
    """What a schema model's ``model_validate`` gives the kernel: the arguments, as they were given
    (JSON Schema validation checks values; it does not convert them)."""

    __pydantic_extra__ = None

    def __init__(self, arguments: Mapping[str, Any]) -> None:
        self.__dict__.update(arguments)


class _SchemaModel(BaseModel):
    """What the two schema models share: the schema, and its validator (built on first use)."""

    json_schema: ClassVar[dict[str, Any]]
    subject: ClassVar[str]
    _validator: ClassVar[Any] = None

    @classmethod
    def schema_errors(cls, value: Any, top_names: bool) -> list[InitErrorDetails]:
        """Every way ``value`` violates the schema, as pydantic error details. With ``top_names``, a
        missing or unknown top-level property has pydantic's own type (``missing``, ``extra_forbidden``)."""
        if cls._validator is None:
            cls._validator = _validator(cls.json_schema)
        found: list[InitErrorDetails] = []
        for error in sorted(cls._validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
            path = tuple(error.absolute_path)
            if error.validator == "required" and isinstance(error.instance, dict):
                missing = [n for n in error.validator_value if n not in error.instance]
                found.extend(_detail("missing", path, name, error.instance, top_names) for name in missing)
            elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
                known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
                extra = [n for n in error.instance if n not in known]
                found.extend(_detail("extra_forbidden", path, name, error.instance[name], top_names) for name in extra)
            else:
                found.append(
                    InitErrorDetails(
                        type=PydanticCustomError("json_schema", "{message}", {"message": error.message}),
                        loc=path,
                        input=error.instance,
                    )
                )
        return found


def _detail(kind: str, path: tuple[Any, ...], name: str, value: Any, top_names: bool) -> InitErrorDetails:
    if top_names and not path:
        return InitErrorDetails(type=kind, loc=(name,), input=value)
    message = "missing required property" if kind == "missing" else "property not allowed"
    return InitErrorDetails(
        type=PydanticCustomError("json_schema", "{message}", {"message": message}), loc=(*path, name), input=value
    )


class SchemaArguments(_SchemaModel):
    """Base of the input models made from a JSON Schema (:func:`schema_arguments_model`); the flow's
    build-time checks read the names from the schema (``properties``, ``required``), not from fields."""

    model_config = ConfigDict(extra="allow")

    @classmethod
    def model_validate(  # gives the arguments themselves, not an instance
        cls, obj: Any, *, strict: bool | None = None, extra: Any = None, from_attributes: bool | None = None,
        context: Any | None = None, by_alias: bool | None = None, by_name: bool | None = None,
    ) -> Any:  # fmt: skip
        errors = cls.schema_errors(obj, top_names=True)
        if errors:
            raise ValidationError.from_exception_data(cls.subject, errors)
        return ValidatedArguments(obj)

    @classmethod
    def names(cls) -> tuple[list[str], list[str], bool]:
        """The schema's property names, the required ones, and whether a step may give others: only
        when the schema says ``additionalProperties`` (JSON Schema allows any by default, but a name a
        tool's schema does not list is a typo far more often than a wish)."""
        properties = cls.json_schema.get("properties")
        known = list(properties) if isinstance(properties, dict) else []
        required = [name for name in cls.json_schema.get("required", ()) if isinstance(name, str)]
        return known, required, cls.json_schema.get("additionalProperties", False) is not False


class SchemaResult(_SchemaModel):
    """Base of the output models made from a JSON Schema: ``model_validate`` checks a tool's result and
    gives back the result itself. Never instantiated."""

    @classmethod
    def model_validate(  # gives the validated value, not an instance
        cls, obj: Any, *, strict: bool | None = None, extra: Any = None, from_attributes: bool | None = None,
        context: Any | None = None, by_alias: bool | None = None, by_name: bool | None = None,
    ) -> Any:  # fmt: skip
        errors = cls.schema_errors(obj, top_names=False)
        if errors:
            raise ValidationError.from_exception_data(cls.subject, errors)
        return obj


def schema_arguments_model(tool_name: str, schema: Mapping[str, Any]) -> type[SchemaArguments]:
    """The input model of a tool whose arguments ``schema`` describes (an object schema)."""
    return _model(SchemaArguments, tool_name, "Arguments", schema)


def schema_result_model(tool_name: str, schema: Mapping[str, Any]) -> type[SchemaResult]:
    """The output model of a tool whose result ``schema`` describes."""
    return _model(SchemaResult, tool_name, "Result", schema)


M = TypeVar("M", bound="_SchemaModel")


def _model(base: type[M], tool_name: str, suffix: str, schema: Mapping[str, Any]) -> type[M]:
    """A subclass of ``base`` for ``schema``, named by the tool and a digest of the schema (the journal's
    flow fingerprint names models: a changed schema is a changed flow)."""
    checked = dict(schema)
    _validator(checked)  # a schema that is not one fails here, where the tool is made
    text = json.dumps(checked, sort_keys=True, default=repr)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    name = f"{_NOT_IDENTIFIER.sub('_', tool_name)}{suffix}_{digest}"
    namespace = {
        "__module__": DERIVED_MODULE,
        "__qualname__": name,
        "json_schema": checked,
        "subject": f"{tool_name} {suffix.lower()}",
    }
    return type(name, (base,), namespace)


def _validator(schema: dict[str, Any]) -> Any:
    """A ``jsonschema`` validator for ``schema``, of its own dialect; ``TypeError`` if it is not a schema."""
    try:
        import jsonschema
        from jsonschema.validators import validator_for
    except ImportError:  # pragma: no cover - the extra is missing
        raise ImportError("JSON Schema tools need the jsonschema package: pip install 'flowkernel[schema]'") from None
    cls = validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "the top"
        raise TypeError(f"not a valid JSON Schema (at {where}): {exc.message}") from None
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_tool(
    fn: Callable[..., Any],
    *,
    name: str,
    input_schema: Mapping[str, Any],
    output_schema: Mapping[str, Any] | None = None,
    description: str = "",
    **settings: Any,
) -> Tool[..., Any]:
    """A tool calling ``fn`` with keyword arguments that ``input_schema`` describes; its result is checked
    against ``output_schema`` when given. ``settings``: the other :class:`Tool` fields (``retry``, ...)."""
    return Tool(
        name=name,
        fn=fn,
        description=description,
        input_model=schema_arguments_model(name, input_schema),
        output_model=None if output_schema is None else schema_result_model(name, output_schema),
        validate_annotations=False,
        **settings,
    )
