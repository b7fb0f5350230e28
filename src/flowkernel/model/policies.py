"""Error policies: what a step's failure means for the run (fail, continue, or fall back)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from .checked import CheckedModel
from .tool import Tool

__all__ = ("ContextPolicy", "ErrorPolicy", "Fallback")


class Fallback(CheckedModel):
    """What takes a failed step's place: a literal ``value``, or the result of calling ``tool`` with the
    step's arguments. The step then counts as succeeded, marked ``fallback`` in its record."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")
    _kind = "fallback"

    value: Any = None
    tool: Tool | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Fallback:
        if self.tool is not None and "value" in self.model_fields_set:
            raise ValueError("a fallback is a value or a tool, not both")
        return self


ErrorPolicy = Literal["fail", "continue"] | Fallback
"""``fail`` (default): dependents are skipped and the run fails. ``continue``: the error is recorded and
dependents are skipped, but the run still succeeds. A :class:`Fallback`: a value takes the output's place."""


class ContextPolicy(CheckedModel):
    """Accumulated context, for chain-style flows where each step reads what the steps before it made.

    A step's context merges, in declaration order, the outputs of the steps it depends on, directly or
    through others, along paths of steps that all succeeded: dict outputs (and pydantic models) key by
    key, anything else under its step's id. Two steps giving the same key is a collision: ``overwrite``
    (the later step wins), ``warn`` (the later wins, and the step's record says so), or ``error`` (the
    step fails). With a ``model``, the merged context must fit it before the step runs.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")
    _kind = "context policy"

    collision: Literal["overwrite", "warn", "error"] = "overwrite"
    model: type[BaseModel] | None = None
