"""Typed errors raised by flowkernel.

Errors *raised* here are about misuse: a malformed flow, bad run inputs, a driver that breaks the
protocol. Errors that happen *inside* a run (a tool raising, a schema violation) never raise: they
become :class:`~flowkernel.result.ErrorInfo` records in the result. :class:`ToolError` is the one
exception here for tools to raise, to give such a record structured ``details``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = (
    "AbandonedCallWarning",
    "AsyncResultError",
    "CacheError",
    "CacheKeyError",
    "CorruptCacheError",
    "ConfigError",
    "CorruptJournalError",
    "DefinitionError",
    "DriverNotFoundError",
    "FileProblem",
    "FlowChangedError",
    "FlowFileError",
    "FlowInputError",
    "FlowKernelError",
    "FlowValidationError",
    "ForeignCacheError",
    "ForeignJournalError",
    "JournalError",
    "JournalWriteError",
    "NonDeterminismError",
    "Problem",
    "MiddlewareError",
    "ProtocolError",
    "ResourceError",
    "ResumeError",
    "RunExistsError",
    "RunNotFoundError",
    "RunOptionsError",
    "ServeError",
    "ToolError",
    "ToolMismatchError",
)


class FlowKernelError(Exception):
    """Base class of every error flowkernel raises."""


class ToolError(Exception):
    """Raised by a tool to fail its call with a message and structured ``details`` (a remote error code).

    The step's error record (:class:`~flowkernel.result.ErrorInfo`) keeps ``details`` next to the
    message and traceback, in the result's JSON, the journal and ``flowkernel show``. Any exception
    with a ``details`` mapping does the same; this one only spares tools defining their own::

        raise ToolError("the server refused the call", details={"code": -32602, "data": {"field": "q"}})

    Not a :class:`FlowKernelError`: those are flowkernel's own errors about misuse (``except
    FlowKernelError`` must not catch what a tool raised), while this is raised by tools, inside a run,
    and becomes an error record like any other exception a tool raises (a retry policy names it like
    any other type: ``retry_on=("ToolError",)``, or a subclass's name).
    """

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] | None = None if details is None else dict(details)


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a flow: where it is (``steps[2].arguments.x``) and what is wrong."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@dataclass(frozen=True, slots=True)
class FileProblem(Problem):
    """A problem in a flow file, with where it is in the file: ``line`` and ``column`` count from 1
    (0: the problem has no place of its own in the file, such as a file that cannot be read)."""

    file: str = ""
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{place}: {self.location}: {self.message}" if self.location else f"{place}: {self.message}"


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


class FlowFileError(_ProblemListError):
    """A flow file (YAML or JSON) cannot be loaded: it is not readable, too big or too deep, not valid
    YAML, against the file format's schema, names a tool that cannot be found or whose module is not
    allowed, or describes an invalid flow. ``name`` is the file, ``problems`` lists every problem found,
    each a :class:`FileProblem` with its line and column."""

    subject = "invalid flow file"


class ConfigError(FlowKernelError):
    """The project's flowkernel configuration (``flowkernel.toml``, ``[tool.flowkernel]`` in
    ``pyproject.toml``) cannot be read, or holds a setting of the wrong kind."""


class ResourceError(FlowKernelError):
    """A run's resource could not be opened (the run does not start), or a tool asked for one that is
    not open in its run."""


class ToolMismatchError(_ProblemListError, ResourceError):
    """A run's opened resources describe tools its steps do not fit (an MCP server without a tool a step
    names, or with a schema its literal arguments violate); ``problems`` lists every one. Raised when the
    resources open, before any call."""

    subject = "tools that do not fit flow"


class FlowInputError(_ProblemListError):
    """The inputs given to a run do not fit the flow; ``problems`` lists each mismatch."""

    subject = "bad inputs for flow"


class ProtocolError(FlowKernelError):
    """A driver broke the kernel protocol (like h11's ``RemoteProtocolError``).

    Raised by the kernel when a driver sends a completion for an unknown call, completes a call twice,
    or sends nothing while calls are still in flight.
    """


_BUNDLED_DRIVERS = frozenset({"sync", "asyncio", "trio", "dask"})
"""The drivers flowkernel releases, each a distribution of its own that the core's extra of its name installs."""


class DriverNotFoundError(FlowKernelError):
    """No driver is installed under the requested name."""

    def __init__(self, name: str, installed: tuple[str, ...]) -> None:
        self.name = name
        self.installed = installed
        known = ", ".join(installed) or "none"
        hint = f'; install it with pip install "flowkernel[{name}]"' if name in _BUNDLED_DRIVERS else ""
        super().__init__(f"no driver named {name!r} is installed (installed: {known}){hint}")


class JournalError(FlowKernelError):
    """Base class of the errors about a run's journal: reading it, writing it, resuming from it."""


class ForeignJournalError(JournalError):
    """The file is not a flowkernel journal (another database, or not a database at all)."""


class CorruptJournalError(JournalError):
    """The journal is damaged (truncated, overwritten, an entry missing or failing its checksum).

    Nothing is replayed from a damaged journal: a partial replay would silently re-run calls.
    """


class JournalWriteError(JournalError):
    """A completion could not be recorded (a value that cannot be serialized, a full disk).

    Recording is write-ahead, so the kernel never consumed it: the run stops with its partial result.
    """


class RunExistsError(JournalError):
    """A new run was started under a run id the journal already holds (resume it instead)."""


class RunNotFoundError(JournalError):
    """The journal holds no run with this id."""


class FlowChangedError(JournalError):
    """The flow's structure changed since the run started; resuming needs ``allow_flow_change=True``."""


class NonDeterminismError(JournalError):
    """Replaying a journal, the kernel issued other commands than it did the first time.

    ``entry`` is the position of the first divergence, ``recorded`` and ``replayed`` the two command
    digests there (``"<call id> <tool>"`` for invokes, ``"<call id> timer <seconds>"``, ``"<call id> cancel"``).
    """

    def __init__(self, run_id: str, entry: int, recorded: tuple[str, ...], replayed: tuple[str, ...]) -> None:
        self.run_id = run_id
        self.entry = entry
        self.recorded = recorded
        self.replayed = replayed
        first = next(
            (k for k, (a, b) in enumerate(zip(recorded, replayed, strict=False)) if a != b),
            min(len(recorded), len(replayed)),
        )
        theirs = recorded[first] if first < len(recorded) else "nothing more"
        ours = replayed[first] if first < len(replayed) else "nothing more"
        super().__init__(
            f"run {run_id!r} is not deterministic: replaying journal entry {entry}, command {first} of the batch "
            f"is {ours!r} where the journal recorded {theirs!r} (recorded {list(recorded)}, replayed {list(replayed)})"
        )


class CacheError(FlowKernelError):
    """Base class of the errors about a step cache (:class:`~flowkernel.host.cache.StepCache`)."""


class ForeignCacheError(CacheError):
    """The file is not a flowkernel step cache (another database, or not a database at all)."""


class CorruptCacheError(CacheError):
    """The step cache file is damaged (SQLite reports it malformed, or its schema was changed)."""


class CacheKeyError(CacheError, TypeError):
    """A cached call's arguments are not JSON data, so they cannot key the step cache: the call fails
    with this error, naming the argument and its type (give the tool JSON arguments, or ``cache=False``)."""


class MiddlewareError(FlowKernelError):
    """A call middleware broke its contract (yielded something that is not a call, or yielded twice);
    the call fails with this error."""


class DefinitionError(_ProblemListError, ValueError):
    """A building block of a flow (a step, a tool, a retry or error policy) was given values it cannot
    take: a bad step id, both or neither of ``tool=``/``flow=``, ``timeout=nan``, an unknown field.
    ``kind`` says what was being built (``"step"``), ``name`` which one (its id or name, if it had one),
    and ``problems`` lists every problem found, each at its field (``retry.max_attempts``).

    Also a :class:`ValueError`, as pydantic's ``ValidationError`` (raised here before) is, so existing
    ``except ValueError`` handlers keep working. A whole flow's problems are a :class:`FlowValidationError`.
    """

    def __init__(self, kind: str, name: str | None, problems: tuple[Problem, ...]) -> None:
        self.kind = kind
        self.name = name  # type: ignore[assignment]  # None: the object had no name (a policy)
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        count = len(problems)
        what = f"{kind} {name!r}" if name is not None else kind
        ValueError.__init__(self, f"invalid {what}: {count} problem{'s' * (count != 1)}\n{lines}")


class RunOptionsError(_ProblemListError, ValueError):
    """The keyword arguments given to a driver's ``run`` (``max_concurrency``, ``deadline``, ...) are
    wrong: an unknown name (with "did you mean"), a value of the wrong type, out of range, or two
    options that do not go together. ``problems`` lists each; raised before anything runs or is recorded.
    ``name`` is the flow's name. Also a :class:`ValueError`, as the errors raised here before were."""

    subject = "bad run options for flow"


class ResumeError(JournalError, ValueError):
    """A resume was asked for in a way that cannot work: ``resume=True`` without a journal or a run id,
    inputs passed to a resumed run, or an option that decides what runs (``max_concurrency``,
    ``deadline``, ``fail_fast``) different from the one the run started with. ``problems`` lists each
    (each a :class:`Problem`). Also a :class:`ValueError`, as the errors raised here before were."""

    def __init__(self, run_id: str | None, problems: tuple[Problem, ...]) -> None:
        self.run_id = run_id
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        count = len(problems)
        what = f"run {run_id!r}" if run_id else "a run"
        super().__init__(f"cannot resume {what}: {count} problem{'s' * (count != 1)}\n{lines}")


class AsyncResultError(FlowKernelError, TypeError):
    """A tool declared sync returned a coroutine or an async generator: it should be declared async.
    Recorded as the call's error (the coroutine is closed, never run)."""


class ServeError(FlowKernelError, ValueError):
    """Flows cannot be served as asked (``flowkernel serve``, :mod:`flowkernel.mcp.serve`): two flows under
    one tool name, a driver that cannot run inside the server's event loop, an address that is not
    ``HOST:PORT``. Raised before the server starts. Also a :class:`ValueError`, as a bad argument is."""


class AbandonedCallWarning(RuntimeWarning):
    """A call that did not end within the grace period after its cancellation was abandoned: the run
    returned without it, and its task or thread runs on in the background until it ends by itself."""
