"""flowkernel: a sans-io, generator-driven execution kernel for tool-chain flows.

The kernel (:func:`run_flow`) decides what runs; drivers (sync, asyncio, trio, ...) do the running.

The names below load on first use (PEP 562), so ``import flowkernel`` costs next to nothing: a command,
a driver or a test that needs only part of the package (``flowkernel --help``, ``flowkernel.errors``)
does not pay for pydantic and the model. ``from flowkernel import Flow`` works as always.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (type checkers read it the same way)
if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads these
    from typing import Any

    from .errors import (
        DefinitionError,
        DriverNotFoundError,
        FlowInputError,
        FlowKernelError,
        FlowValidationError,
        Problem,
        ProtocolError,
        ResumeError,
        RunOptionsError,
        ToolError,
    )
    from .kernel import RunOptions, run_flow
    from .model import (
        CachePolicy,
        Context,
        ContextPolicy,
        ErrorPolicy,
        Fallback,
        Flow,
        Input,
        Item,
        Ref,
        Resource,
        RetryPolicy,
        Step,
        Tool,
        tool,
    )
    from .protocol import (
        Cancel,
        Cancelled,
        Command,
        Completion,
        Invoke,
        Raised,
        Returned,
        StartTimer,
        StopRun,
        TimerFired,
    )
    from .result import (
        AttemptRecord,
        AttemptStatus,
        ErrorInfo,
        ErrorKind,
        ExecutionResult,
        RunStatus,
        StepRecord,
        StepStatus,
    )

__version__ = "0.2.0"

__all__ = (
    "AttemptRecord",
    "AttemptStatus",
    "CachePolicy",
    "Cancel",
    "Cancelled",
    "Command",
    "Completion",
    "Context",
    "ContextPolicy",
    "DefinitionError",
    "DriverNotFoundError",
    "ErrorInfo",
    "ErrorKind",
    "ErrorPolicy",
    "ExecutionResult",
    "Fallback",
    "Flow",
    "FlowInputError",
    "FlowKernelError",
    "FlowValidationError",
    "Input",
    "Item",
    "Invoke",
    "Problem",
    "ProtocolError",
    "Raised",
    "Ref",
    "Resource",
    "ResumeError",
    "Returned",
    "RetryPolicy",
    "RunOptions",
    "RunOptionsError",
    "RunStatus",
    "StartTimer",
    "Step",
    "StepRecord",
    "StepStatus",
    "StopRun",
    "TimerFired",
    "Tool",
    "ToolError",
    "run_flow",
    "tool",
)


def __getattr__(name: str) -> Any:
    """Load a public name on first use: every name in ``__all__`` lives in one of the five submodules below
    (each lists it in its own ``__all__``), imported together here, statically, so the kernel's import
    contract can follow them. The value is cached in the module, so this runs once per name."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import errors, kernel, model, protocol, result

    for module in (errors, kernel, model, protocol, result):
        if name in module.__all__:
            value = getattr(module, name)
            globals()[name] = value
            return value
    raise AttributeError(f"flowkernel.__all__ names {name!r}, which no submodule exports")  # pragma: no cover


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
