"""flowkernel: a sans-io, generator-driven execution kernel for tool-chain flows.

The kernel (:func:`run_flow`) decides what runs; drivers (sync, asyncio, trio, ...) do the running.
"""

from .errors import (
    DriverNotFoundError,
    FlowInputError,
    FlowKernelError,
    FlowValidationError,
    Problem,
    ProtocolError,
    ToolError,
)
from .kernel import RunOptions, run_flow
from .model import (
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

__version__ = "0.1.0"

__all__ = (
    "AttemptRecord",
    "AttemptStatus",
    "Cancel",
    "Cancelled",
    "Command",
    "Completion",
    "Context",
    "ContextPolicy",
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
    "Returned",
    "RetryPolicy",
    "RunOptions",
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
