"""The flow file format as pydantic models: what :func:`flow_file_schema` publishes as a JSON Schema,
and what a file's data is checked against before anything in it is resolved.

Everything a Python flow says that is data has a place here; what is code (tools, resources, sub-flows
in Python) is named, never written: a tool by ``SERVER.TOOL``, a registered name or ``MODULE:ATTR``.
Argument values are literals, or one of the source forms (``{"$ref": step}``, ``{"$input": name}``,
``{"$item": path}``, ``{"$context": path}``, ``{"$literal": value}``) anywhere inside them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..model.cache import CachePolicy
from ..model.retry import RetryPolicy
from ..model.step import STEP_ID_PATTERN

__all__ = (
    "FORMAT_VERSION",
    "ContextSpec",
    "FallbackSpec",
    "FlowBody",
    "FlowFile",
    "InputSource",
    "OnError",
    "RefSource",
    "ServerSpec",
    "StepSpec",
    "SubflowSpec",
    "flow_file_schema",
)

FORMAT_VERSION = 1
"""The version of the file format this flowkernel reads and writes (``flowkernel: 1`` in a file)."""

_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

ARGUMENTS_HELP = (
    "The tool's arguments by name. A value is a literal, or anywhere inside one: "
    '{"$ref": STEP, "path": JMESPATH, "default": VALUE} (a step\'s output), '
    '{"$input": NAME, "path": ..., "default": ...} (a flow input), '
    '{"$item": PATH} (in a map step: the element), {"$context": PATH} (the accumulated context), '
    'or {"$literal": VALUE} (VALUE as it is, even a mapping with $ keys).'
)


class RefSource(BaseModel):
    """The output of step ``$ref``, or the part of it the JMESPath ``path`` selects."""

    model_config = _STRICT
    ref: str = Field(alias="$ref", min_length=1)
    path: str = ""
    default: Any = None


class InputSource(BaseModel):
    """The flow input ``$input``, or the part of it the JMESPath ``path`` selects."""

    model_config = _STRICT
    input: str = Field(alias="$input", min_length=1)
    path: str = ""
    default: Any = None


class SubflowSpec(BaseModel):
    """A sub-flow: another flow ``file`` (relative to this one), or the flow ``name``: one in this file's
    ``flows``, a registered one (entry-point group ``flowkernel.flows``), or ``MODULE:ATTR`` (allowed
    modules only)."""

    model_config = _STRICT
    file: str | None = Field(default=None, min_length=1)
    name: str | None = Field(default=None, min_length=1)


class FallbackSpec(BaseModel):
    """What takes a failed step's place: a literal ``value``, or the result of calling ``tool``."""

    model_config = _STRICT
    value: Any = None
    tool: str | None = Field(default=None, min_length=1)


class OnErrorFallback(BaseModel):
    """``on_error: {fallback: {...}}``."""

    model_config = _STRICT
    fallback: FallbackSpec


OnError = Literal["fail", "continue"] | OnErrorFallback


class StepSpec(BaseModel):
    """One step: call ``tool`` (or run the sub-flow ``flow``) with ``arguments``."""

    model_config = _STRICT
    id: str = Field(pattern=STEP_ID_PATTERN)
    tool: str | None = Field(
        default=None, min_length=1, description="SERVER.TOOL, a registered tool name, or MODULE:ATTR (allowed modules)"
    )
    flow: SubflowSpec | None = None
    arguments: dict[str, Any] = Field(default_factory=dict, description=ARGUMENTS_HELP)
    map: RefSource | InputSource | None = Field(default=None, description="Call once per element of this list.")
    max_concurrency: int | None = Field(default=None, ge=1)
    after: list[str] = Field(default_factory=list, description="Steps to wait for beyond those referenced.")
    retry: RetryPolicy | None = None
    timeout: float | None = Field(default=None, gt=0)
    cache: CachePolicy | Literal[False] | None = Field(
        default=None, description="Serve results from the run's step cache (false: never); else the tool's policy."
    )
    on_error: OnError = "fail"
    when: str | None = Field(default=None, description='A JMESPath condition over {"inputs": ..., "steps": ...}.')
    join: Literal["all", "any"] = "all"


class ContextSpec(BaseModel):
    """Accumulated context: each step's context merges the outputs of the steps it depends on."""

    model_config = _STRICT
    collision: Literal["overwrite", "warn", "error"] = "overwrite"


class FlowBody(BaseModel):
    """A flow: its steps, and what it gives (``outputs``; default: every step nothing depends on)."""

    model_config = _STRICT
    name: str | None = Field(default=None, min_length=1)
    version: str | int = "1"
    description: str = ""
    steps: list[StepSpec]
    outputs: dict[str, RefSource] | None = None
    context: ContextSpec | None = None


class ServerSpec(BaseModel):
    """An MCP server, by stdio ``command`` (with ``args``, ``env``, ``cwd``) or streamable HTTP ``url``
    (with ``headers``); its tools are named ``SERVER.TOOL`` in steps."""

    model_config = _STRICT
    command: str | None = Field(default=None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = Field(default=None, min_length=1)
    headers: dict[str, str] | None = None


class FlowFile(FlowBody):
    """A flowkernel flow file (YAML or JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="flowkernel flow file")
    flowkernel: Literal[1] = Field(default=1, description="The version of the file format.")
    name: str = Field(min_length=1)  # required at the top
    servers: dict[str, ServerSpec] = Field(default_factory=dict, description="MCP servers, by name.")
    resources: list[str] = Field(default_factory=list, description="Resources, each MODULE:ATTR (allowed modules).")
    flows: dict[str, FlowBody] = Field(
        default_factory=dict, description="Flows the steps may run as sub-flows ({name: NAME}), by name."
    )


def flow_file_schema() -> dict[str, Any]:
    """The JSON Schema of flow files (Draft 2020-12), generated from :class:`FlowFile`."""
    schema = FlowFile.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
