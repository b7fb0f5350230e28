"""What every driver offers, so the CLI and the parity suite can run any of them the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, Unpack, runtime_checkable

from ..model.flow import Flow
from ..result import ExecutionResult
from .settings import RunSettings

__all__ = ("Driver",)


@runtime_checkable
class Driver(Protocol):
    """A driver: ``run_blocking`` executes a flow to the end from plain synchronous code.

    Async drivers also offer ``async def run(...)`` with the same parameters, to use inside their
    event loop; ``run_blocking`` starts a loop of their kind for callers that have none.
    """

    name: str

    def run_blocking(
        self,
        flow: Flow,
        inputs: Mapping[str, Any] | None = None,
        **settings: Unpack[RunSettings],
    ) -> ExecutionResult: ...
