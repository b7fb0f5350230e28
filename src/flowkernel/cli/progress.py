"""The live progress display of ``flowkernel run`` and ``resume``, fed by nothing but the run's events.

Why: without it, a long run is a blank screen until its result appears. What it shows, on stderr and
only when stderr is a terminal: the flow's top-level steps done of their total, the steps running now
(sub-flow steps and map elements too, by their paths, as activity that does not count towards the
total), the failures so far and the elapsed time.

It appears only once the run has lasted :data:`DISPLAY_DELAY` seconds and is erased when the run ends,
so a quick run prints exactly what it printed without it, and the result that follows never mixes with
it. :meth:`LiveProgress.on_event` is what the CLI passes as the drivers' ``on_event``; it may be called
from any thread (the Dask driver's is not necessarily the caller's), so the state it feeds is locked,
and rich's own refresh thread reads it.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from ..events import Event, RetryScheduled, RunFinished, StepCancelled, StepFinished, StepSkipped, StepStarted
from ..model.flow import Flow
from ..result import ErrorInfo, StepStatus

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.text import Text

__all__ = ("DISPLAY_DELAY", "LiveProgress", "ProgressState", "Snapshot", "is_nested", "live_progress", "on_terminal")

DISPLAY_DELAY = 0.5
"""Seconds a run lasts before its display appears: a quicker run prints exactly as it did without one."""
REFRESH_PER_SECOND = 10.0
SHOWN_RUNNING = 6
"""How many running steps the display names (oldest first); the rest are counted."""
SHOWN_FAILURES = 3
"""How many of the latest failures the display shows, one line each."""


def is_nested(path: str) -> bool:
    """Whether an event's path is inside a step (a sub-flow's step ``report/fetch``, a map element ``each[3]``)."""
    return "/" in path or "[" in path


class Snapshot(NamedTuple):
    """What the display shows at one instant: plain data, safe to read in any thread."""

    total: int
    """The flow's top-level steps."""
    done: int
    """Top-level steps settled: succeeded, failed, skipped or cancelled."""
    counts: dict[str, int]
    """Settled top-level steps by status (``"succeeded"``, ``"failed"``, ``"skipped"``, ``"cancelled"``)."""
    running: tuple[str, ...]
    """What runs now, oldest first: paths, with the attempt or the wait before a retry."""
    failures: tuple[str, ...]
    """The latest failures at any depth, ``path: Type: message``, oldest first."""
    finished: bool
    cached: int = 0
    """Succeeded top-level steps a step cache answered (their tools did not run)."""


class ProgressState:
    """A run's progress, kept up to date from its events (:meth:`feed`, from any thread).

    Counts only the flow's top-level steps (``total`` of them); steps inside sub-flows and map elements
    appear among the running ones while they run. A resumed run's replayed events count like live ones,
    so the display starts where the run had got to.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self._lock = threading.Lock()
        self._settled: dict[str, str] = {}
        self._running: dict[str, str] = {}  # path -> label; dicts keep insertion order: oldest first
        self._failures: deque[str] = deque(maxlen=SHOWN_FAILURES)
        self._cached: set[str] = set()
        self._finished = False

    def feed(self, event: Event) -> None:
        """Take one event into account; events the display does not show are ignored."""
        with self._lock:
            if isinstance(event, StepStarted):
                self._running.pop(event.path, None)
                attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
                self._running[event.path] = event.path + attempt
            elif isinstance(event, RetryScheduled):
                self._running[event.path] = f"{event.path} (attempt {event.attempt} in {event.delay:.1f} s)"
            elif isinstance(event, StepFinished):
                self._settle(event.path, event.status)
                if event.cached and not is_nested(event.path):
                    self._cached.add(event.path)  # a set: a resumed run's replayed steps count once
                if event.status == StepStatus.FAILED.value:
                    self._failures.append(_failure(event.path, event.error))
            elif isinstance(event, StepSkipped):
                self._settle(event.path, StepStatus.SKIPPED.value)
            elif isinstance(event, StepCancelled):
                self._settle(event.path, StepStatus.CANCELLED.value)
            elif isinstance(event, RunFinished) and not event.path:
                self._finished = True

    def _settle(self, path: str, status: str) -> None:
        self._running.pop(path, None)
        if not is_nested(path):
            self._settled[path] = status

    def snapshot(self) -> Snapshot:
        """The state now, as plain data."""
        with self._lock:
            return Snapshot(
                total=self.total,
                done=len(self._settled),
                counts=dict(Counter(self._settled.values())),
                running=tuple(self._running.values()),
                failures=tuple(self._failures),
                finished=self._finished,
                cached=len(self._cached),
            )


def _failure(path: str, error: ErrorInfo | None) -> str:
    what = "failed" if error is None else f"{error.type}: {' '.join(error.message.split())}"
    return f"{path}: {what}"


class LiveProgress:
    """The display: a transient rich ``Live`` on ``console`` that starts once the run has lasted ``delay``.

    Use it as a context manager around the run, passing :meth:`on_event` to the driver; leaving the
    block erases the display (if it ever appeared) before anything else is printed. Nothing is written
    to ``console`` before ``delay``.

    rich's ``Live`` and ``Progress`` are imported when a display is made, only on a terminal: a run whose
    output goes to a pipe or a file never loads them (nor rich at all with ``--quiet`` or ``--json``).
    """

    def __init__(
        self,
        flow_name: str,
        total: int,
        console: Console,
        *,
        delay: float = DISPLAY_DELAY,
        refresh_per_second: float = REFRESH_PER_SECOND,
    ) -> None:
        from rich.live import Live
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.state = ProgressState(total)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TextColumn("{task.fields[failed]}", style="bold red", markup=False),
            TextColumn("{task.fields[others]}", markup=False),
            TimeElapsedColumn(),
            console=console,
            auto_refresh=False,  # never started itself: it is drawn inside the Live below
        )
        self._task = self._progress.add_task(flow_name, total=total, failed="", others="")
        self._live = Live(
            console=console,
            get_renderable=self.render,
            refresh_per_second=refresh_per_second,
            transient=True,
            redirect_stdout=_is_tty(sys.stdout),  # else a tool's prints would move from a file to the terminal
            redirect_stderr=True,
        )
        self._timer = threading.Timer(delay, self._live.start, kwargs={"refresh": True})
        self._timer.daemon = True

    def on_event(self, event: Event) -> None:
        """The drivers' ``on_event``: cheap, and safe from any thread."""
        self.state.feed(event)

    @property
    def shown(self) -> bool:
        """Whether the display is on the terminal now."""
        return self._live.is_started

    def render(self) -> RenderableType:
        """The display's current frame: the progress line, what runs, the latest failures."""
        from rich.console import Group

        snap = self.state.snapshot()
        failed = snap.counts.get(StepStatus.FAILED.value, 0)
        others = [f"{snap.cached} cached"] if snap.cached else []
        others += (
            f"{snap.counts[status.value]} {status.value}"
            for status in (StepStatus.SKIPPED, StepStatus.CANCELLED)
            if snap.counts.get(status.value)
        )
        self._progress.update(
            self._task, completed=snap.done, failed=f"{failed} failed" if failed else "", others=", ".join(others)
        )
        lines: list[RenderableType] = [self._progress]
        if snap.running:
            shown = ", ".join(snap.running[:SHOWN_RUNNING])
            more = f" and {len(snap.running) - SHOWN_RUNNING} more" if len(snap.running) > SHOWN_RUNNING else ""
            lines.append(_line(f"  running: {shown}{more}", "cyan"))
        lines.extend(_line(f"  failed {failure}", "red") for failure in snap.failures)
        return Group(*lines)

    def __enter__(self) -> LiveProgress:
        self._timer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._timer.cancel()
        self._timer.join()  # the display may be starting right now: let it finish, then stop it
        self._live.stop()


def _line(text: str, style: str) -> Text:
    from rich.text import Text

    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def on_terminal(console: Console) -> bool:
    """Whether ``console`` writes to a terminal that can redraw a display: a TTY, not ``TERM=dumb``, and not
    turned off with rich's ``TTY_INTERACTIVE=0`` (``FORCE_COLOR`` on a pipe does not count)."""
    return console.is_interactive and not console.is_dumb_terminal and _is_tty(console.file)


@contextmanager
def live_progress(
    flow: Flow, *, enabled: bool = True, console: Console | None = None
) -> Iterator[Callable[[Event], None] | None]:
    """The ``on_event`` to run ``flow`` with, showing its progress on stderr while the block runs.

    Yields ``None`` (so the run builds no events at all) when ``enabled`` is false (``--quiet``,
    ``--json``: then rich is not even imported) or stderr is not a terminal.
    """
    if not enabled:
        yield None
        return
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    if not on_terminal(console):
        yield None
        return
    with LiveProgress(flow.name, len(flow.steps), console) as display:
        yield display.on_event
