"""Typed errors raised by flowkernel.

Errors *raised* here are about misuse: a malformed flow, bad run inputs, a driver that breaks the
protocol. Errors that happen *inside* a run (a tool raising, a schema violation) never raise: they
become :class:`~flowkernel.result.ErrorInfo` records in the result.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = (
    "DriverNotFoundError",
    "FlowInputError",
    "FlowKernelError",
    "FlowValidationError",
    "Problem",
    "ProtocolError",
)


class FlowKernelError(Exception):
    """Base class of every error flowkernel raises."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a flow: where it is (``steps[2].arguments.x``) and what is wrong."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class _ProblemListError(FlowKernelError):
    """An error carrying every problem found, so the user fixes them all in one pass."""

    subject: str = "problems"

    def __init__(self, name: str, problems: tuple[Problem, ...]) -> None:
        self.name = name
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        count = len(problems)
        super().__init__(f"{self.subject} {name!r}: {count} problem{'s' * (count != 1)}\n{lines}")


class FlowValidationError(_ProblemListError):
    """The flow is malformed; ``problems`` lists everything that is wrong with it."""

    subject = "invalid flow"


class FlowInputError(_ProblemListError):
    """The inputs given to a run do not fit the flow; ``problems`` lists each mismatch."""

    subject = "bad inputs for flow"


class ProtocolError(FlowKernelError):
    """A driver broke the kernel protocol (like h11's ``RemoteProtocolError``).

    Raised by the kernel when a driver sends a completion for an unknown call, completes a call twice,
    or sends nothing while calls are still in flight.
    """


class DriverNotFoundError(FlowKernelError):
    """No driver is installed under the requested name."""

    def __init__(self, name: str, installed: tuple[str, ...]) -> None:
        self.name = name
        self.installed = installed
        known = ", ".join(installed) or "none"
        super().__init__(f"no driver named {name!r} is installed (installed: {known})")
