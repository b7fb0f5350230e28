"""Steps: one tool call each, with arguments drawn from literals, flow inputs and earlier outputs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .policies import ErrorPolicy
from .refs import Input, Ref
from .retry import RetryPolicy
from .tool import Tool

__all__ = ("STEP_ID_PATTERN", "Step", "walk_sources")

STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"
"""Step ids are identifiers (dots and dashes allowed), so call ids built from them stay unambiguous."""


class Step(BaseModel):
    """One step of a flow: call ``tool`` with ``arguments``.

    ``after`` adds dependencies beyond the steps the arguments reference (ordering without data).
    ``retry`` and ``timeout`` override the tool's; ``on_error`` says what a failure means for the run.
    ``when`` is a JMESPath condition over ``{"inputs": ..., "steps": {id: output}}``: when it is false
    the step is skipped, and so are its dependents, unless a dependent has ``join="any"`` (it runs once
    every dependency is settled, if at least one succeeded).
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    id: str = Field(pattern=STEP_ID_PATTERN)
    tool: Tool
    arguments: dict[str, Any] = Field(default_factory=dict)
    after: tuple[str, ...] = ()
    retry: RetryPolicy | None = None
    timeout: float | None = Field(default=None, gt=0)
    on_error: ErrorPolicy = "fail"
    when: str | None = None
    join: Literal["all", "any"] = "all"

    @property
    def retry_policy(self) -> RetryPolicy | None:
        """The retry policy in force: the step's, else the tool's."""
        return self.retry if self.retry is not None else self.tool.retry

    @property
    def timeout_seconds(self) -> float | None:
        """The timeout in force: the step's, else the tool's."""
        return self.timeout if self.timeout is not None else self.tool.timeout

    def sources(self) -> Iterator[tuple[str, Ref | Input]]:
        """Every reference in the arguments with its location (``arguments.rows[1].id``)."""
        for name, value in self.arguments.items():
            yield from walk_sources(value, f"arguments.{name}")


def walk_sources(value: Any, location: str) -> Iterator[tuple[str, Ref | Input]]:
    """Yield ``(location, source)`` for every :class:`Ref` or :class:`Input` nested in ``value``."""
    if isinstance(value, Ref | Input):
        yield location, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk_sources(item, f"{location}.{key}")
    elif isinstance(value, list | tuple):
        for position, item in enumerate(value):
            yield from walk_sources(item, f"{location}[{position}]")
